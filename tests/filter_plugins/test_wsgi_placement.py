"""Processes on hosts of their own (processes.<name>.group): each web server's model keeps the processes it
runs, and wsgi_process_hosts gives every other host of a named group a model of its own, or names what is
wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from wsgi_placement import FilterModule, wsgi_process_hosts
from wsgi_sites import wsgi_host_model

BASE = "/usr/local/www"
PROCESSES = {"worker": {"command": "celery -A shop worker"},
             "reports": {"command": "celery -A shop worker -Q reports", "group": "workers"}}


@pytest.fixture()
def playbook(tmp_path: Path) -> Path:
    """A controller layout with a project app's directory."""
    (tmp_path / "playbook" / "apps" / "shop" / "shop").mkdir(parents=True)
    (tmp_path / "playbook" / "apps" / "shop" / "shop" / "wsgi.py").write_text("application = None\n")
    (tmp_path / "hello.wsgi").write_text("application = None\n")
    return tmp_path / "playbook"


def web_server(playbook: Path, groups: tuple[str, ...] = ("webservers",), secrets: dict | None = None,
               **fields: Any) -> dict[str, Any]:
    """A web server's hostvars after its validation: its model (one site with the shop app, its database,
    schedule and processes unless fields say otherwise) and its apps' secret values."""
    app = {"name": "shop", "mount": "/", "mode": "daemon", "project": "apps/shop", "entry": "shop.wsgi:application",
           "database": {"name": "shop"}, "processes": PROCESSES,
           "schedule": [{"name": "clean", "command": "python manage.py clean", "on_calendar": "daily"}], **fields}
    sites = [{"server_name": "shop.example.com", "apps": [app]}]
    model = wsgi_host_model(sites, BASE, str(playbook), str(playbook.parent / "hello.wsgi"), host_groups=groups)
    assert model["problems"] == ""
    return {"wsgi_model": model, "wsgi_secrets": {"shop": secrets if secrets is not None else {"SECRET_KEY": "k"}}}


def test_a_web_server_runs_the_processes_without_a_group_or_of_its_own_groups(playbook: Path) -> None:
    (app,) = web_server(playbook)["wsgi_model"]["sites"][0]["apps"]
    assert list(app["processes"]) == ["worker"] and list(app["processes_elsewhere"]) == ["reports"]
    (also,) = web_server(playbook, ("webservers", "workers"))["wsgi_model"]["sites"][0]["apps"]
    assert list(also["processes"]) == ["worker", "reports"] and also["processes_elsewhere"] == {}


def test_a_host_of_the_group_gets_the_app_with_those_processes_only_and_its_secrets(playbook: Path) -> None:
    hostvars = {"web1": web_server(playbook), "web2": web_server(playbook), "worker1": {}}
    placed = wsgi_process_hosts(hostvars, ["web1", "web2"], {"webservers": ["web1", "web2"], "workers": ["worker1"]})
    assert placed["problems"] == "" and list(placed["hosts"]) == ["worker1"]
    model = placed["hosts"]["worker1"]["model"]
    assert (model["web_server"], model["sites"]) == (False, [])
    (app,) = model["process_apps"]
    (web_app,) = hostvars["web1"]["wsgi_model"]["sites"][0]["apps"]
    # The release, environment, database and user of the web servers' app; no loader and no jobs (the web
    # servers run those, once per fleet).
    assert (app["release"], app["env"], app["database"]) == (web_app["release"], web_app["env"], web_app["database"])
    assert list(app["processes"]) == ["reports"] and list(app["processes_elsewhere"]) == ["worker"]
    assert (app["schedule"], app["script"]) == ([], None)
    assert placed["hosts"]["worker1"]["secrets"] == {"shop": {"SECRET_KEY": "k"}}


def test_nothing_to_place_without_a_group(playbook: Path) -> None:
    hostvars = {"web1": web_server(playbook, processes={"worker": {"command": "celery -A shop worker"}})}
    assert wsgi_process_hosts(hostvars, ["web1"], {"webservers": ["web1"]}) == {"problems": "", "hosts": {}}


def test_a_web_server_in_the_group_runs_the_process_itself(playbook: Path) -> None:
    hostvars = {"web1": web_server(playbook, ("webservers", "workers")), "web2": web_server(playbook)}
    placed = wsgi_process_hosts(hostvars, ["web1", "web2"], {"webservers": ["web1", "web2"], "workers": ["web1"]})
    assert placed == {"problems": "", "hosts": {}}


@pytest.mark.parametrize(("groups", "fragments"), [
    ({"webservers": ["web1", "web2"]}, ("web server web1, app 'shop': processes.reports.group 'workers' is no",
                                        "allowed: an inventory group with at least one host")),
    ({"webservers": ["web1", "web2"], "workers": []}, ("processes.reports.group 'workers' is no inventory group",)),
])
def test_a_group_without_hosts_is_named(playbook: Path, groups: dict, fragments: tuple[str, ...]) -> None:
    hostvars = {"web1": web_server(playbook), "web2": web_server(playbook)}
    problems = wsgi_process_hosts(hostvars, ["web1", "web2"], groups)["problems"]
    assert all(fragment in problems for fragment in fragments), problems


def test_a_web_server_of_the_group_without_the_app_is_named(playbook: Path) -> None:
    hostvars = {"web1": web_server(playbook), "web2": web_server(playbook, name="blog", database={"name": "blog"})}
    problems = wsgi_process_hosts(hostvars, ["web1", "web2"], {"webservers": ["web1", "web2"], "workers": ["web2"]})
    assert problems["problems"].splitlines()[0] == (
        "web server web1, app 'shop': processes.reports.group 'workers' holds web server web2, which has no app "
        "'shop'; allowed: hosts that are no web servers, or web servers with the app")


def test_web_servers_that_define_the_app_differently_are_named_without_secret_values(playbook: Path) -> None:
    hostvars = {"web1": web_server(playbook), "web2": web_server(playbook, env={"MODE": "x"}, secrets={"SECRET_KEY": "z"}),
                "worker1": {}}
    problems = wsgi_process_hosts(hostvars, ["web1", "web2"], {"webservers": ["web1", "web2"], "workers": ["worker1"]})
    assert problems["problems"] == (
        "web server web2, app 'shop': env, secrets differ from web1's; allowed: the same app on every web server "
        "when a process of it runs on other hosts (processes.<name>.group), which take it from the first web server")


def test_filter_module_exports_the_filter() -> None:
    assert FilterModule().filters() == {"wsgi_process_hosts": wsgi_process_hosts}
