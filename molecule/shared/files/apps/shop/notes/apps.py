"""The notes app of the test shop."""

from django.apps import AppConfig


class NotesConfig(AppConfig):
    name = "notes"
