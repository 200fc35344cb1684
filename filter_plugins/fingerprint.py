"""A fingerprint of controller files and settings: the same inputs give the same digest, any change another.

Two roles need to know whether what they would ship has changed, and must agree on what "changed" means:
the rollout hashes every input that decides what a host gets (the roles, the app sources, the headrace
source, the settings) and deploys in batches only hosts whose recorded fingerprint differs; the headrace
role keeps one built wheel per fingerprint of its source, so a source is built once. Neither role owns
the other, so the digest lives here, in a filter of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ansible.errors import AnsibleFilterError

# Generated or editor files that do not change what is deployed.
IGNORED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache", ".git", "build", "dist", ".venv"})
IGNORED_SUFFIXES = (".pyc", ".md", ".egg-info", ".swp")


def _files(path: str) -> Iterator[str]:
    """Every file under path (or path itself), in a stable order."""
    if os.path.isfile(path):
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS and not d.endswith(IGNORED_SUFFIXES))
        for name in sorted(files):
            if not name.endswith(IGNORED_SUFFIXES):
                yield os.path.join(root, name)


def fingerprint(paths: Iterable[Any], settings: Any = None) -> str:
    """SHA-256 over the files under each path (names relative to it, and contents) and the settings.

    Paths are made absolute, deduplicated and sorted, so their order and spelling do not matter; files
    that do not change what is deployed (caches, editor files, Markdown) are left out. settings is hashed
    as canonical JSON (sorted keys), so a reordered mapping gives the same digest.
    """
    digest = hashlib.sha256()
    for path in sorted({os.path.abspath(str(p)) for p in paths or []}):
        if not os.path.exists(path):
            raise AnsibleFilterError(f"fingerprint: {path} does not exist on the controller")
        for file in _files(path):
            digest.update(os.path.relpath(file, path).encode() + b"\0")
            with open(file, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class FilterModule:
    """Ansible entry point: the fingerprint filter."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {"fingerprint": fingerprint}
