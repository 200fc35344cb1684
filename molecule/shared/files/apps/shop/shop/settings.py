"""Settings of the test shop: everything a host differs in comes from the environment the roles set."""

import os
import ssl
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
STATE_DIRECTORY = Path(os.environ["STATE_DIRECTORY"])

SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["*"]

# auth (and contenttypes, which it needs) for `manage.py createsuperuser` through playbooks/run.yml.
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.staticfiles", "notes"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]

# The fleet's PostgreSQL when the app has a database (the roles set DATABASE_URL), else SQLite in the state
# directory, which persists across releases and rollbacks.
if os.environ.get("DATABASE_URL"):
    _url = urlsplit(os.environ["DATABASE_URL"])
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname,
        "PORT": _url.port or 5432,
        "OPTIONS": {"sslmode": parse_qs(_url.query).get("sslmode", ["prefer"])[0]},
        # Seconds a thread keeps its connection (Django's default 0: a new TLS + SCRAM handshake on the
        # database server per request); checked before reuse, so a restarted server costs no request.
        "CONN_MAX_AGE": int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
        "CONN_HEALTH_CHECKS": True,
    }}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": STATE_DIRECTORY / "shop.sqlite3"}}

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Celery: the broker is the app's Redis where it has one (the fleet's board: REDIS_URL is rediss://, TLS with
# the redis host's self-signed certificate unchecked), else an in-process one for the single hosts. A worker
# takes one task at a time per process; on SIGTERM it finishes the tasks it runs and gives back the rest.
CELERY_BROKER_URL = os.environ.get("REDIS_URL", "memory://")
if CELERY_BROKER_URL.startswith("rediss://"):
    CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": ssl.CERT_NONE}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
