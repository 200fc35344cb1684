"""The wsgi_sites example in the top README is valid input and shows every field, so it cannot drift.

The example is read from the README itself (the YAML block under "The variable interface") and run
through the same wsgi_normalize_sites filter the role uses: a misspelled, removed or mode-mismatched field
fails here. Every field of the table must appear in it, so a new field cannot stay undocumented there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTION = "## The variable interface"


def readme_example(text: str) -> dict[str, Any]:
    """The first ```yaml block after the section heading, parsed."""
    _, found, rest = text.partition(SECTION + "\n")
    assert found, f"no {SECTION!r} section in {README}"
    match = re.search(r"^```yaml\n(.*?)^```$", rest, re.DOTALL | re.MULTILINE)
    assert match, f"no yaml block in {SECTION!r}"
    return yaml.safe_load(match.group(1))


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    """The README's example variables."""
    return readme_example(README.read_text())


@pytest.fixture(scope="module")
def wsgi_sites_module():
    """The filter plugin, importable through tests/filter_plugins/conftest.py's path setup."""
    import sys

    plugin_dir = str(ROOT / "filter_plugins")
    if plugin_dir not in sys.path:
        sys.path.insert(0, plugin_dir)
    import wsgi_sites

    return wsgi_sites


def normalize(plugin, variables: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    """Run the example through the filter, with each relative source (and certificate file) present under a
    playbook dir."""
    playbook = tmp_path / "playbook"
    hello = tmp_path / "hello.wsgi"
    hello.write_text("application = None\n")
    for site in variables["wsgi_sites"]:
        for key in ("cert_file", "key_file", "chain_file"):  # contents are the wsgi_tls_files action's
            if isinstance((site.get("tls") or {}).get(key), str):
                path = playbook / site["tls"][key]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("-----BEGIN CERTIFICATE-----\n")
        for app in site.get("apps") or []:
            if isinstance(app.get("source"), str):
                path = playbook / app["source"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("application = None\n")
            if isinstance(app.get("project"), str):
                project = playbook / app["project"]
                project.mkdir(parents=True, exist_ok=True)
                (project / (app.get("requirements") or "requirements.txt")).write_text("Django>=5.2,<5.3\n")
    return plugin.wsgi_normalize_sites(variables["wsgi_sites"], variables["wsgi_base_dir"], str(playbook),
                                       str(hello), ["/healthz"], ["wsgi-health"])


def test_readme_example_is_valid(example, wsgi_sites_module, tmp_path: Path) -> None:
    sites = normalize(wsgi_sites_module, example, tmp_path)
    assert [site["server_name"] for site in sites] == ["www.example.com"]
    assert {app["mode"] for app in sites[0]["apps"]} >= {"daemon", "proxy"}


def test_readme_example_shows_every_field(example, wsgi_sites_module) -> None:
    site_keys = {key for site in example["wsgi_sites"] for key in site}
    app_keys = {key for site in example["wsgi_sites"] for app in site.get("apps", []) for key in app}
    assert set(wsgi_sites_module.SITE_KEYS) - site_keys == set()
    assert set(wsgi_sites_module.APP_KEYS) - app_keys == set()


def test_a_misspelled_field_in_the_example_would_fail(example, wsgi_sites_module, tmp_path: Path) -> None:
    """The check above is not vacuous: the same example with one key misspelled is rejected."""
    from ansible.errors import AnsibleFilterError

    text = README.read_text().replace("        threads: 15\n", "        thread: 15\n", 1)
    assert text != README.read_text()
    with pytest.raises(AnsibleFilterError, match="did you mean 'threads'"):
        normalize(wsgi_sites_module, readme_example(text), tmp_path)
