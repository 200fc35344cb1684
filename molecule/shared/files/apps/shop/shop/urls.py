"""URLs of the test shop."""

from django.urls import path
from notes import views

urlpatterns = [
    path("", views.index),
    path("environment", views.environment),
    path("notes", views.notes),
]
