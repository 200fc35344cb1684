"""Load a plugin file of this collection as a module, by path, the way Ansible loads it (no package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any


def load(path: Path, name: str) -> Any:
    """A plugin file as a module, registered under name (dataclasses look their module up while it loads)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
