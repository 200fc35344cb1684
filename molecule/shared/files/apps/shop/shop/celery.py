"""The test shop's Celery app (`celery -A shop worker`): its broker is the app's Redis (REDIS_URL, which the
roles set for an app with `redis`), its tasks in notes/tasks.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
