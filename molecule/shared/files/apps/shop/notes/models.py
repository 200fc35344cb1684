"""One table, created and filled by the migrations, so a test can see that they ran."""

from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
