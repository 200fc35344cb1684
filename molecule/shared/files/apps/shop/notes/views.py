"""Views of the test shop: what the tests read over HTTP."""

import hashlib
import logging
import os
import socket
import sys
import time

import django
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from shop.version import VERSION

from notes import tasks
from notes.models import Note


def index(request):
    """The app, its version and the release it runs from."""
    return JsonResponse({"app": "shop", "version": VERSION, "release": str(settings.BASE_DIR.resolve())})


def environment(request):
    """What the app sees of its environment; the secret only as a digest."""
    return JsonResponse({
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE"),
        "SHOP_GREETING": os.environ.get("SHOP_GREETING"),
        "STATE_DIRECTORY": os.environ.get("STATE_DIRECTORY"),
        "secret_sha256": hashlib.sha256(os.environ.get("SECRET_KEY", "").encode()).hexdigest(),
        "redis_url_sha256": hashlib.sha256(os.environ.get("REDIS_URL", "").encode()).hexdigest(),
        "django": django.get_version(),
        "prefix": sys.prefix,
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "uid": os.getuid(),
        "django_file": django.__file__,
        # What the server told the app about the request (HTTPS, the client's address).
        "is_secure": request.is_secure(),
        "remote_addr": request.META.get("REMOTE_ADDR"),
    })


def notes(request):
    """A template and a database query: the migrations' row."""
    return render(request, "notes/index.html", {"notes": Note.objects.order_by("id")})


def notes_json(request):
    """The notes as data, and which database they come from (the fleet shares one)."""
    return JsonResponse({
        "vendor": connection.vendor,
        "database": connection.settings_dict["NAME"] if connection.vendor != "sqlite" else "sqlite",
        "notes": list(Note.objects.order_by("id").values_list("text", flat=True)),
    })


def add_note(request):
    """POST text=...: a row written through this host, for another host to read."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    note = Note.objects.create(text=request.POST["text"][:200])
    return JsonResponse({"id": note.id, "text": note.text}, status=201)


def visit(request):
    """A write and a read per request (bench/modes.py --app django-postgresql): a row, then the ten newest."""
    Note.objects.create(text=f"visit {time.time_ns()}")
    return render(request, "notes/index.html", {"notes": Note.objects.order_by("-id")[:10]})


def enqueue_tasks(request):
    """POST token=..., count=N (1), seconds=S (0), queue=Q (Celery's default): N Celery tasks token-1 ..
    token-N on queue Q, each sleeping S seconds and then recording itself in the database (notes/tasks.py)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    token, count = request.POST["token"][:100], int(request.POST.get("count", "1"))
    seconds, queue = float(request.POST.get("seconds", "0")), request.POST.get("queue") or None
    for number in range(1, count + 1):
        tasks.record.apply_async((f"{token}-{number}", seconds), queue=queue)
    return JsonResponse({"enqueued": count, "token": token}, status=202)


def tasks_done(request):
    """GET token=...: the runs recorded by the tasks of that token, as rows (task, host, version, started,
    finished), read from the database through whichever host serves the request."""
    return JsonResponse({"runs": tasks.runs(request.GET["token"]), "host": socket.gethostname()})


def upload(request, name):
    """An upload kept in the app's state directory (STATE_DIRECTORY/uploads/<name>): PUT writes the body,
    GET reads it (404 when there is none), DELETE removes it; what the state backups keep and restore."""
    path = settings.STATE_DIRECTORY / "uploads" / name
    if request.method == "PUT":
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_bytes(request.body)
        return JsonResponse({"name": name, "bytes": len(request.body)}, status=201)
    if request.method == "DELETE":
        path.unlink(missing_ok=True)
        return JsonResponse({"name": name, "deleted": True})
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET", "PUT", "DELETE"])
    if not path.is_file():
        return JsonResponse({"name": name, "found": False}, status=404)
    return HttpResponse(path.read_bytes(), content_type="application/octet-stream")


def log_probe(request):
    """POST token=...: a warning through logging and a line on stderr, each naming the token (what the journal
    must show under the app's name, at their levels: warning and err)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    token = request.POST["token"][:100]
    logger = logging.getLogger("shop")
    logger.warning("a warning of the shop %s", token)
    print(f"a line on stderr of the shop {token}", file=sys.stderr, flush=True)
    return JsonResponse({"logged": token})
