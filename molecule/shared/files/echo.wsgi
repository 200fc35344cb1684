"""Test app: answers with what mod_wsgi or the server tells it, so tests can check mode and routing."""

import json
import os
import pwd

VERSION = "1"


def application(environ, start_response):
    report = {
        "version": VERSION,
        "pid": os.getpid(),
        "user": pwd.getpwuid(os.getuid()).pw_name,
        "process_group": environ.get("mod_wsgi.process_group"),
        "application_group": environ.get("mod_wsgi.application_group"),
        "script_name": environ.get("SCRIPT_NAME"),
        "path_info": environ.get("PATH_INFO"),
        "http_host": environ.get("HTTP_HOST"),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "url_scheme": environ.get("wsgi.url_scheme"),
    }
    body = json.dumps(report).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def hello_callable(environ, start_response):
    """Served when an app sets `callable: hello_callable` (WSGICallableObject)."""
    body = b"callable: hello_callable"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
