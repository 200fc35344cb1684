"""The collection's module_utils by the name the filter plugins import them with
(ansible_collections.wsgi_hosting.debian.plugins.module_utils...), for every test: through collections/,
the link that makes a checkout its own collection (Ansible itself finds them there, next to site.yml)."""

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parent.parent / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
