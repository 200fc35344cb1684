"""Make the filter plugins importable by module name, the way Ansible loads them (by path), and the
collection's module_utils by the name they import it with (ansible_collections.wsgi_hosting.debian...),
through collections/, the link that makes a checkout its own collection."""

import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
for path in (PROJECT_DIR / "filter_plugins", PROJECT_DIR / "collections"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
