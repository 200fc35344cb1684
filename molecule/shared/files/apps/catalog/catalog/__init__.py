"""The Flask test app (entry catalog:app): its dependencies, environment and release, over HTTP."""

import hashlib
import logging
import os
import sys
from importlib import metadata

import markupsafe
from flask import Flask, jsonify, request

from catalog.version import VERSION

app = Flask(__name__)


@app.route("/")
def index():
    """The app and the release it runs from."""
    return jsonify(app="catalog", version=VERSION,
                   release=os.path.realpath(os.path.join(os.path.dirname(__file__), "..")))


@app.route("/environment")
def environment():
    """What the app sees: its environment (the secret as a digest) and its compiled dependency."""
    from markupsafe import (
        _speedups,  # the C extension: fails if the wheel is not for this Python
    )

    return jsonify(
        CATALOG_MODE=os.environ.get("CATALOG_MODE"),
        STATE_DIRECTORY=os.environ.get("STATE_DIRECTORY"),
        secret_sha256=hashlib.sha256(os.environ.get("CATALOG_TOKEN", "").encode()).hexdigest(),
        flask=metadata.version("flask"),
        markupsafe=metadata.version("markupsafe"),
        speedups=_speedups.__file__,
        prefix=sys.prefix,
        python=f"{sys.version_info[0]}.{sys.version_info[1]}",
        uid=os.getuid(),
        escaped=str(markupsafe.escape("<b>")),
        # Who the client was and how it came, as the server (or a trusted proxy in front) says.
        scheme=request.scheme,
        remote_addr=request.remote_addr,
        # With a database: the connection settings the roles give as secrets (the secret ones as digests).
        database={name: os.environ.get(name) for name in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE")},
        database_url_sha256=hashlib.sha256(os.environ.get("DATABASE_URL", "").encode()).hexdigest(),
        pgpassword_sha256=hashlib.sha256(os.environ.get("PGPASSWORD", "").encode()).hexdigest(),
        redis_url_sha256=hashlib.sha256(os.environ.get("REDIS_URL", "").encode()).hexdigest(),
    )


@app.route("/log", methods=["POST"])
def log():
    """POST token=...: a warning through logging and a line on stderr, each naming the token (what the journal
    must show under the app's name, at their levels: warning and err)."""
    token = request.form["token"][:100]
    logger = logging.getLogger("catalog")
    logger.warning("a warning of the catalog %s", token)
    print(f"a line on stderr of the catalog {token}", file=sys.stderr, flush=True)
    return jsonify(logged=token)
