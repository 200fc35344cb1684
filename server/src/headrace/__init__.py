"""headrace: a strict, fast, pre-forking HTTP/1.1 WSGI server built on the standard library alone."""

__version__ = "0.1.0"
SERVER_NAME = "headrace"
