"""The release fingerprint that tells a rollout which web hosts would change.

Draining a host, deploying it and checking it one batch at a time is what keeps a changing fleet serving,
but it makes a run over hosts that are already up to date as slow as the fleet is long. Every input that
decides what a host gets (the roles, the app sources, the headrace source, the settings) is hashed on
the controller; a host stores the fingerprint of its last good deployment, and only hosts in service
whose stored fingerprint differs go through the batches.
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


def rollout_release_digest(paths: Iterable[Any], settings: Any = None) -> str:
    """SHA-256 over the files under each path (names relative to it, and contents) and the settings."""
    digest = hashlib.sha256()
    for path in sorted({os.path.abspath(str(p)) for p in paths or []}):
        if not os.path.exists(path):
            raise AnsibleFilterError(f"rollout_release_digest: {path} does not exist on the controller")
        for file in _files(path):
            digest.update(os.path.relpath(file, path).encode() + b"\0")
            with open(file, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class FilterModule:
    """Ansible entry point: the rollout filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {"rollout_release_digest": rollout_release_digest}
