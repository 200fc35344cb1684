"""Creates the notes table and one row that says the migrations ran (and on which host)."""

import os
import socket

from django.db import migrations, models


def first_note(apps, schema_editor):
    apps.get_model("notes", "Note").objects.create(
        text=f"migrated on {socket.gethostname()} as uid {os.getuid()}")


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []  # noqa: RUF012 - Django reads these class attributes
    operations = [  # noqa: RUF012
        migrations.CreateModel(
            name="Note",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text", models.CharField(max_length=200)),
            ],
        ),
        migrations.RunPython(first_note, migrations.RunPython.noop),
    ]
