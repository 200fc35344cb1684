"""The health check's part for processes (roles/wsgi/files/healthz.wsgi), in process: an expected process
instance without its mark in the run directory is named as down and makes the answer 503; with every mark
there, or with no processes.json (a host the role has not laid out for processes), nothing is down."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path

import pytest

HEALTHZ = Path(__file__).resolve().parents[1] / "roles" / "wsgi" / "files" / "healthz.wsgi"


@pytest.fixture()
def healthz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    loader = importlib.machinery.SourceFileLoader("healthz_under_test", str(HEALTHZ))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    (tmp_path / "checks.json").write_text("[]")
    monkeypatch.setattr(module, "CHECKS_FILE", str(tmp_path / "checks.json"))
    monkeypatch.setattr(module, "PROCESSES_FILE", str(tmp_path / "processes.json"))
    return module


def answer(healthz) -> tuple[str, str]:
    seen: list[str] = []
    body = b"".join(healthz.application({}, lambda status, headers: seen.append(status)))
    return seen[0], body.decode()


def test_a_process_without_its_mark_is_named_and_fails_the_check(healthz, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (tmp_path / "processes.json").write_text(json.dumps({"run_dir": str(run_dir), "units": [
        {"app": "shop", "unit": "wsgi-shop-worker@1.service"}, {"app": "shop", "unit": "wsgi-shop-worker@2.service"}]}))
    (run_dir / "wsgi-shop-worker@1.service").touch()
    assert answer(healthz) == ("503 Service Unavailable", "fail\nshop: process wsgi-shop-worker@2.service is down\n")
    (run_dir / "wsgi-shop-worker@2.service").touch()
    assert answer(healthz) == ("200 OK", "ok\n")


def test_without_processes_json_no_process_is_expected(healthz) -> None:
    assert answer(healthz) == ("200 OK", "ok\n")
