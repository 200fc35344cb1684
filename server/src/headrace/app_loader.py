"""Find the WSGI callable: ``module:callable`` or a mod_wsgi-style script file.

Only workers (and ``--check-config``) call this, never the master, so a SIGHUP reload
really loads new code in the new workers.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from importlib.machinery import SourceFileLoader


class AppLoadError(Exception):
    """The application could not be found or is not callable."""


def is_script_path(app: str) -> bool:
    """A script path rather than ``module[:callable]``.

    A slash makes it a path; so does a ``.wsgi``/``.py`` name that exists as a file here
    (``myproject.wsgi`` without such a file stays the module of that name).
    """
    if "/" in app:
        return True
    if ":" in app:
        return False
    return app.endswith((".wsgi", ".py")) and os.path.isfile(app)


def load_app(spec: str, callable_name: str = "application") -> Callable:
    if is_script_path(spec):
        return _load_script(spec, callable_name)
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise AppLoadError(f"invalid application {spec!r}: expected module:callable")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    module = importlib.import_module(module_name)
    obj: object = module
    for part in (attr or callable_name).split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(f"{module_name!r} has no attribute {attr or callable_name!r}") from None
    if not callable(obj):
        raise AppLoadError(f"{spec!r} is not callable")
    return obj


def _load_script(path: str, callable_name: str) -> Callable:
    """Load a script file the way mod_wsgi does: a fresh module named after the path."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise AppLoadError(f"WSGI script not found: {path}")
    name = "_headrace_wsgi_" + hashlib.sha1(path.encode()).hexdigest()[:16]
    loader = SourceFileLoader(name, path)
    module_spec = importlib.util.spec_from_loader(name, loader)
    assert module_spec is not None
    module = importlib.util.module_from_spec(module_spec)
    module.__file__ = path
    sys.modules[name] = module
    loader.exec_module(module)
    obj = getattr(module, callable_name, None)
    if obj is None:
        raise AppLoadError(f"{path} defines no {callable_name!r}")
    if not callable(obj):
        raise AppLoadError(f"{path}: {callable_name!r} is not callable")
    return obj
