"""The collection as a user installs it: its own site playbook, run from a directory outside the checkout.

A user who installed wsgi_hosting.debian runs `ansible-playbook -i inventory.yml wsgi_hosting.debian.site`
from a directory of their own and must get what `ansible-playbook site.yml` gives from a checkout. So this
builds the collection from the checkout, installs it into a collections path of its own
(tests/collection_install.py) and runs its site playbook from a temporary directory, with the scenario's
inventory and none of the checkout's settings, adding to this host a site on port 8080 with an app of each
kind the roles put together: a proxy-mode app (headrace), an embedded script and a project app with a
compiled dependency (a venv built from wheels the controller fetched). Each answers over HTTP on the host.

It runs after test_acme.py (files run in name order) and leaves the scenario's own sites as they were.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from conftest import PROJECT_DIR

sys.path.insert(0, str(PROJECT_DIR / "tests"))
from collection_install import FQCN, install_collection

testinfra_hosts = ["webservers"]

SITE, PORT = "collection.example.com", 8080
ECHO = str(PROJECT_DIR / "molecule" / "shared" / "files" / "echo.wsgi")
CATALOG = str(PROJECT_DIR / "molecule" / "shared" / "files" / "apps" / "catalog")
# The checkout's own ansible.cfg says the same: one exec per module run over the docker connection.
CONFIG = "interpreter_python = auto_silent\n[connection]\npipelining = true\n"


def the_site() -> dict:
    return {"server_name": SITE, "port": PORT, "apps": [
        {"name": "coll-proxied", "mount": "/proxied", "mode": "proxy", "source": ECHO},
        {"name": "coll-embedded", "mount": "/embedded", "mode": "embedded", "source": ECHO},
        {"name": "coll-catalog", "mount": "/catalog", "mode": "daemon", "project": CATALOG, "entry": "catalog:app",
         "env": {"CATALOG_MODE": "collection"}},
    ]}


def get(host, path: str) -> dict:
    """A request to the new site on the host itself (port 8080 is not published)."""
    return json.loads(host.check_output(f"curl -sf -H 'Host: {SITE}' http://127.0.0.1:{PORT}{path}"))


def test_the_installed_site_playbook_deploys_every_kind_of_app_from_outside_the_checkout(host, lab):
    with tempfile.TemporaryDirectory(prefix="wsgi-collection-user-") as scratch:
        work_dir = Path(scratch)
        assert not work_dir.resolve().is_relative_to(PROJECT_DIR)
        installed = install_collection(work_dir, CONFIG)
        more = work_dir / "host_vars.yml"
        more.write_text(json.dumps({"all": {"hosts": {lab.name: {"wsgi_sites": [*lab.sites, the_site()]}}}}))
        run = installed.run("ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-i", str(more),
                            f"{FQCN}.site", "--limit", lab.name, timeout=1500)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    # The roles came from the installed collection, not from the checkout.
    assert f"{FQCN}.wsgi : " in run.stdout and str(PROJECT_DIR / "roles") not in run.stdout

    proxied = get(host, "/proxied/x")
    assert (proxied["script_name"], proxied["path_info"], proxied["process_group"]) == ("/proxied", "/x", None)
    assert host.service("headrace@coll-proxied.socket").is_running

    embedded = get(host, "/embedded/y")
    assert (embedded["script_name"], embedded["process_group"], embedded["user"]) == ("/embedded", "", "www-data")

    catalog = get(host, "/catalog/")
    assert catalog["app"] == "catalog"
    environment = get(host, "/catalog/environment")
    assert environment["CATALOG_MODE"] == "collection"
    assert environment["speedups"].endswith(".so") and environment["python"] == "3.13"

    # The scenario's own sites still answer, and the health check finds every app of the host answering.
    assert lab.request("/healthz", "static.example.com").status == 200
