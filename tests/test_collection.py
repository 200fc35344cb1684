"""The repository builds into the collection wsgi_hosting.debian, and the installed build works on its own.

A user installs the built tarball and calls the roles by FQCN from a playbook of their own. So these tests
build the collection from this checkout with ansible-galaxy, install it (offline: its dependencies are the
collections the pinned ansible package ships) into a temporary collections path, and run a playbook that
lives outside the repository, with an ansible.cfg outside it too: the checkout's roles_path,
filter_plugins and collections/ are not seen, so whatever the run finds comes from the installed build.

The other tests keep the build honest as the filters grow: every filter a FilterModule exports has a
documentation file (ansible-doc reads it for the installed collection), and the roles call every filter by
its collection name, the only name that resolves inside a role of an installed collection.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import ansible
import pytest
import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements
from collection_install import FQCN, GALAXY, PROJECT_DIR, Installed, install_collection

FILTER_DIR = PROJECT_DIR / "filter_plugins"
# Where the pinned ansible package keeps the collections it ships (community.general, community.docker, ...).
SHIPPED_COLLECTIONS = Path(ansible.__file__).resolve().parent.parent / "ansible_collections"


def exported_filters() -> dict[str, str]:
    """Filter name -> file name, for every filter a FilterModule in filter_plugins/ exports."""
    filters: dict[str, str] = {}
    for path in sorted(FILTER_DIR.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"collection_test_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
        if hasattr(module, "FilterModule"):
            filters.update(dict.fromkeys(module.FilterModule().filters(), path.name))
    return filters


FILTERS = exported_filters()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the collection, install it offline into a temporary path, and configure Ansible to use only that."""
    # The play's one module run (the copy of the result) uses this Python, on localhost.
    return install_collection(tmp_path_factory.mktemp("outside"), f"interpreter_python = {sys.executable}\n")


def validate_playbook(installed: Installed, sites: list[dict[str, Any]]) -> tuple[Path, Path]:
    """A user's playbook (outside the repository) running the installed wsgi role's validate entry point.

    Returns the playbook and the file it writes the normalized sites to.
    """
    result = installed.work_dir / "wsgi_model_sites.json"
    result.unlink(missing_ok=True)
    playbook = installed.work_dir / "validate.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Validate my sites with the installed collection",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"wsgi_sites": sites},
        "tasks": [
            {"name": "Validate", "ansible.builtin.import_role": {"name": f"{FQCN}.wsgi", "tasks_from": "validate"}},
            {"name": "Show", "ansible.builtin.debug": {"var": "wsgi_model.sites"}},
            {"name": "Keep", "ansible.builtin.copy": {
                "content": "{{ wsgi_model.sites | to_json }}", "dest": str(result), "mode": "0644"}},
        ],
    }], sort_keys=False))
    return playbook, result


def test_the_build_keeps_the_filters_and_the_headrace_source(installed: Installed) -> None:
    """plugins/filter stays a link to filter_plugins/ (every filter file in it), and server/ is shipped."""
    link = installed.collection_dir / "plugins" / "filter"
    assert link.is_symlink(), "plugins/filter should stay a link to filter_plugins/"
    assert link.resolve() == (installed.collection_dir / "filter_plugins").resolve()
    shipped = sorted(path.name for path in link.glob("*.py"))
    assert shipped == sorted(path.name for path in FILTER_DIR.glob("*.py"))
    # The headrace role builds its wheel from <collection>/server (headrace_source_dir, relative to the role).
    assert (installed.collection_dir / "server" / "pyproject.toml").is_file()
    assert (installed.collection_dir / "server" / "src" / "headrace" / "__init__.py").is_file()
    for left_out in (".git", ".venv", "bench", "collections", "server/.venv"):
        assert not (installed.collection_dir / left_out).exists(), f"{left_out} should not be in the build"


def test_valid_sites_are_normalized_by_the_installed_role(installed: Installed) -> None:
    """The installed role validates and completes wsgi_sites, with its own filters and its own files."""
    playbook, result = validate_playbook(installed, [
        {"server_name": "www.example.com", "apps": [{"name": "myapp", "mount": "/myapp", "mode": "daemon"}]},
    ])
    run = installed.run("ansible-playbook", "-i", "localhost,", str(playbook))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert f"TASK [{FQCN}.wsgi : " in output, output
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=1\s+unreachable=0\s+failed=0", output), output
    sites = json.loads(result.read_text())
    assert [site["server_name"] for site in sites] == ["www.example.com"]
    site = sites[0]
    assert (site["port"], site["config_name"], site["document_root"]) == (
        80, "www.example.com-80", "/usr/local/www/documents")
    app = site["apps"][0]
    assert {key: app[key] for key in ("name", "mode", "process_group", "wsgi_processes", "threads", "script")} == {
        "name": "myapp", "mode": "daemon", "process_group": "myapp", "wsgi_processes": 2, "threads": 15,
        "script": "/usr/local/www/wsgi-scripts/myapp.wsgi",
    }
    # The default source is the installed role's hello-world, not the checkout's.
    assert app["source"] == str(installed.collection_dir / "roles" / "wsgi" / "files" / "hello.wsgi")


def test_invalid_sites_are_rejected_naming_site_app_and_field(installed: Installed) -> None:
    """Bad input through the installed role fails with the problem named by site, app and field."""
    playbook, result = validate_playbook(installed, [
        {"server_name": "www.example.com", "apps": [{"name": "myapp", "mount": "/myapp/", "mode": "daemon"}]},
    ])
    run = installed.run("ansible-playbook", "-i", "localhost,", str(playbook))
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "wsgi_sites is invalid (1 problem(s))" in output, output
    assert ("wsgi_sites[0] (server_name 'www.example.com'), apps[0] (name 'myapp'): field 'mount': "
            "invalid value '/myapp/'") in output, output
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", output), output
    assert not result.exists()


def test_every_filter_has_documentation() -> None:
    """Each exported filter has filter_plugins/<name>.yml, named for it, with every part ansible-doc shows."""
    assert FILTERS, "no filter found in filter_plugins/"
    missing = [name for name in FILTERS if not (FILTER_DIR / f"{name}.yml").is_file()]
    assert not missing, f"filters without filter_plugins/<name>.yml: {missing}"
    for name in FILTERS:
        doc = yaml.safe_load((FILTER_DIR / f"{name}.yml").read_text())
        assert set(doc) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}, name
        assert doc["DOCUMENTATION"]["name"] == name
        assert f"{FQCN}.{name}" in doc["EXAMPLES"], f"{name}: the example should call the filter by its FQCN"
        assert "_input" in doc["DOCUMENTATION"]["options"], name
    orphans = sorted({path.stem for path in FILTER_DIR.glob("*.yml")} - set(FILTERS))
    assert not orphans, f"documentation for filters that no FilterModule exports: {orphans}"


def test_ansible_doc_documents_every_filter_of_the_installed_collection(installed: Installed) -> None:
    """ansible-doc reads the installed collection's docs for every filter (none undocumented)."""
    run = installed.run("ansible-doc", "-t", "filter", "--json", *(f"{FQCN}.{name}" for name in FILTERS))
    assert run.returncode == 0, run.stdout + run.stderr
    docs = json.loads(run.stdout)
    assert sorted(docs) == sorted(f"{FQCN}.{name}" for name in FILTERS), run.stdout
    for name, doc in docs.items():
        assert doc["doc"]["short_description"], name
        assert doc["doc"]["filename"].startswith(str(installed.collection_dir)), doc["doc"]["filename"]


def test_the_installed_collection_has_the_artifacts_action_and_its_documentation(installed: Installed) -> None:
    """The action ships as plugins/action, and ansible-doc reads its options from the plugins/modules stub."""
    name = "wsgi_app_artifacts"
    assert (installed.collection_dir / "plugins" / "action" / f"{name}.py").is_file()
    run = installed.run("ansible-doc", "-t", "module", "--json", f"{FQCN}.{name}")
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(run.stdout)[f"{FQCN}.{name}"]
    assert doc["doc"]["filename"].startswith(str(installed.collection_dir)), doc["doc"]["filename"]
    assert set(doc["doc"]["options"]) == {"name", "project", "requirements", "python_version", "glibc", "arch",
                                          "build", "cache_dir", "index_url"}
    assert set(doc["return"]) == {"release", "code_archive", "env_key", "wheelhouse_archive", "install_project",
                                  "packages", "cached"}
    assert f"{FQCN}.{name}:" in doc["examples"]


def test_roles_call_the_filters_by_their_collection_names() -> None:
    """A short filter name does not resolve inside a role of an installed collection, so none may be used."""
    short = re.compile(r"\|\s*(" + "|".join(map(re.escape, FILTERS)) + r")\b")
    found = [
        f"{path.relative_to(PROJECT_DIR)}:{number}: {match.group(1)}"
        for path in sorted((PROJECT_DIR / "roles").rglob("*"))
        if path.is_file() and path.suffix in {".yml", ".yaml", ".j2"}
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for match in short.finditer(line)
    ]
    assert not found, f"use {FQCN}.<filter> instead of:\n" + "\n".join(found)


def test_declared_dependencies_agree_and_the_pinned_ansible_meets_them() -> None:
    """galaxy.yml and requirements.yml declare the same collections, in ranges the pinned ansible ships."""
    requirements = yaml.safe_load((PROJECT_DIR / "requirements.yml").read_text())["collections"]
    assert {item["name"]: item["version"] for item in requirements} == GALAXY["dependencies"]
    for name, wanted in GALAXY["dependencies"].items():
        manifest = SHIPPED_COLLECTIONS.joinpath(*name.split("."), "MANIFEST.json")
        version = json.loads(manifest.read_text())["collection_info"]["version"]
        assert meets_requirements(version, wanted), f"{name} {version} (pinned ansible) is not in {wanted}"
