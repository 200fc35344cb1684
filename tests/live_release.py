"""A project app's live release as the tests of its launchers (app-exec, job-run) need it: releases/r1 with
one program in its venv's bin/, the `current` link naming it and the app's environment file shop.json."""

from __future__ import annotations

import json
from pathlib import Path


def make_live_release(root: Path, program: str, script: str, environment: dict[str, str]) -> Path:
    """The release directory, under root, with program (a /bin/sh script) in .venv/bin."""
    release = root / "releases" / "r1"
    (release / ".venv" / "bin").mkdir(parents=True)
    (release / ".venv" / "bin" / program).write_text("#!/bin/sh\n" + script)
    (release / ".venv" / "bin" / program).chmod(0o755)
    (root / "current").symlink_to("releases/r1")
    (root / "shop.json").write_text(json.dumps(environment))
    return release
