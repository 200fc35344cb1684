"""URLs of the test shop."""

from django.urls import path
from notes import views

urlpatterns = [
    path("", views.index),
    path("environment", views.environment),
    path("notes", views.notes),
    path("notes.json", views.notes_json),
    path("notes/add", views.add_note),
    path("notes/visit", views.visit),
    path("tasks/enqueue", views.enqueue_tasks),
    path("tasks/done", views.tasks_done),
    path("uploads/<slug:name>", views.upload),
    path("log", views.log_probe),
]
