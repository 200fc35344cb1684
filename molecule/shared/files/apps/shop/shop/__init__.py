"""The test shop: its Celery app is loaded with Django, so that the views' .delay() finds the broker."""

from .celery import app as celery_app

__all__ = ["celery_app"]
