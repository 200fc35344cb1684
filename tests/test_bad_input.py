"""Bad wsgi_sites input stops `ansible-playbook site.yml` before any host changes.

These run the real top-level site.yml (cwd = project, so ansible.cfg applies) against a throwaway
inventory whose only web server is a Docker container that does not exist. Validation runs on the
controller, so a correct rejection never touches the host; if validation wrongly let an input through,
the next play would try to gather facts from the container and the docker connection would fail with
Docker's "No such container" instead (with pipelining on, a missing container is a failed module run, not
UNREACHABLE). The valid control case proves the tests can tell those two failures apart.

Every bad case must be reported as a problem line naming the site (server_name), the app (name) and the
field, and must be the only problem, so a case cannot pass by tripping over some other mistake.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PROJECT_DIR = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
SERVER_NAME = "www.example.com"
APP_NAME = "myapp"
# What the docker connection prints when a task tries the inventory's container, which never exists.
HOST_CONTACTED = "No such container: no-such-container-"


def _play_names() -> tuple[str, str]:
    """Read the play names from the playbooks so a renamed play cannot make the 'never started' check vacuous."""
    validate = yaml.safe_load((PROJECT_DIR / "playbooks" / "validate.yml").read_text())[0]
    first_deploy = yaml.safe_load((PROJECT_DIR / "playbooks" / "webservers.yml").read_text())[0]
    return validate["name"], first_deploy["name"]


VALIDATE_PLAY, DEPLOY_PLAY = _play_names()
# One line per problem, in the filter's 'wsgi_sites[i] (server_name ...), apps[j] (name ...): field ...' form.
PROBLEM_LINE = re.compile(r"^\s*(wsgi_sites\[\d+\] \(server_name .*: field '.*)$", re.MULTILINE)
PROBLEM_COUNT = re.compile(r"wsgi_sites is invalid \((\d+) problem\(s\)\)")


def app(**fields: Any) -> dict[str, Any]:
    """A valid daemon-mode app (the bundled hello-world source); each case overrides one field."""
    return {"name": APP_NAME, "mount": "/myapp", "mode": "daemon", **fields}


def site(*apps: dict[str, Any], server_name: str = SERVER_NAME) -> dict[str, Any]:
    """A valid site around the given apps, so only the field under test can be wrong."""
    return {"server_name": server_name, "apps": list(apps)}


@dataclass(frozen=True)
class Run:
    """What one ansible-playbook run left behind, with the views the assertions need."""

    returncode: int
    output: str

    @property
    def problems(self) -> list[str]:
        """Distinct problem lines; Ansible repeats the message (error, cause, result), order kept."""
        return list(dict.fromkeys(line.strip() for line in PROBLEM_LINE.findall(self.output)))

    @property
    def problem_count(self) -> int | None:
        """The count the filter itself states, to check that all problems were reported together."""
        match = PROBLEM_COUNT.search(self.output)
        return int(match.group(1)) if match else None

    def problem(self, server_name: str, app_name: str, field: str) -> str:
        """The one problem line naming this site, app and field; fails with the whole output if absent."""
        wanted = (f"(server_name '{server_name}')", f"(name '{app_name}')", f"field '{field}'")
        found = [line for line in self.problems if all(part in line for part in wanted)]
        assert found, f"no problem naming {wanted} in:\n{self.output}"
        return found[0]


RunSite = Callable[..., Run]


@pytest.fixture
def run_site(tmp_path: Path) -> RunSite:
    """Run site.yml (or more_vars' playbook) with wsgi_sites from a JSON file against an unreachable, uniquely
    named host."""

    def run(sites: list[dict[str, Any]], more_vars: dict[str, Any] | None = None, *args: str) -> Run:
        inventory = tmp_path / "hosts.yml"
        groups: dict[str, Any] = {"webservers": {"hosts": {"ghost-web1": {
            "ansible_connection": "community.docker.docker",
            "ansible_host": f"no-such-container-{uuid.uuid4().hex}",
        }}}}
        if (more_vars or {}).pop("with_balancer", False):
            groups["balancers"] = {"hosts": {"ghost-balancer": {
                "ansible_connection": "community.docker.docker",
                "ansible_host": f"no-such-container-{uuid.uuid4().hex}",
            }}}
        if (more_vars or {}).pop("with_backups", False):
            groups["backups"] = {"hosts": {"ghost-backups": {
                "ansible_connection": "community.docker.docker",
                "ansible_host": f"no-such-container-{uuid.uuid4().hex}",
            }}}
        playbook = (more_vars or {}).pop("playbook", "site.yml")
        inventory.write_text(json.dumps(groups))
        extra_vars = tmp_path / "wsgi_sites.json"
        extra_vars.write_text(json.dumps({"wsgi_sites": sites, **(more_vars or {})}))
        # Inherited ANSIBLE_* settings (another inventory, config or callback) would change what is tested.
        env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
        env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"))
        result = subprocess.run(
            [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), playbook, "--extra-vars", f"@{extra_vars}", *args],
            cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        return Run(result.returncode, result.stdout + result.stderr)

    return run


def assert_stopped_by_validation(run: Run) -> None:
    """Failed in the validation play, on the controller, with no connection and no change on any host."""
    assert run.returncode != 0, run.output
    assert f"PLAY [{VALIDATE_PLAY}]" in run.output, run.output
    assert "wsgi_sites is invalid" in run.output, run.output
    assert HOST_CONTACTED not in run.output, run.output
    assert f"PLAY [{DEPLOY_PLAY}]" not in run.output, run.output
    assert "TASK [Gathering Facts]" not in run.output, run.output
    assert re.search(r"ghost-web1\s*:.*changed=0\s+unreachable=0\s+failed=1", run.output), run.output


MISSING_SOURCE = "/nonexistent/wsgi-bad-input/app.wsgi"
# The Django project of the Molecule scenarios: a real project directory on the controller.
SHOP = PROJECT_DIR / "molecule" / "shared" / "files" / "apps" / "shop"


def project_app(**fields: Any) -> dict[str, Any]:
    """A valid project app (the test Django project); each case overrides one field."""
    return app(**{"project": str(SHOP), "entry": "shop.wsgi:application", **fields})


# case id -> (wsgi_sites, app name the message must name, field, bad value the message must show)
BAD_INPUTS: dict[str, tuple[list[dict[str, Any]], str, str, str]] = {
    "mount-trailing-slash": ([site(app(mount="/myapp/"))], APP_NAME, "mount", "'/myapp/'"),
    "mount-no-leading-slash": ([site(app(mount="myapp"))], APP_NAME, "mount", "'myapp'"),
    "two-apps-one-mount": (
        [site(app(name="first", mount="/shared"), app(name="second", mount="/shared"))],
        "second", "mount", "same mount as app 'first'",
    ),
    "unknown-mode": ([site(app(mode="deamon"))], APP_NAME, "mode", "'deamon'"),
    "misspelled-daemon-option": (
        [site(app(daemon_options={"maximum-request": 1000}))],
        APP_NAME, "daemon_options.maximum-request", "did you mean 'maximum-requests'?",
    ),
    "processes-zero": ([site(app(processes=0))], APP_NAME, "processes", "invalid value 0"),
    "threads-zero": ([site(app(threads=0))], APP_NAME, "threads", "invalid value 0"),
    "missing-source": ([site(app(source=MISSING_SOURCE))], APP_NAME, "source", MISSING_SOURCE),
    "app-name-bad-characters": ([site(app(name="My App"))], "My App", "name", "'My App'"),
    # Project apps (issue "real applications": every validation case it names).
    "project-missing": ([site(project_app(project="/nonexistent/wsgi-bad-input/shop"))], APP_NAME, "project",
                        "not found"),
    "project-entry-not-module-callable": ([site(project_app(entry="shop.wsgi"))], APP_NAME, "entry", "'shop.wsgi'"),
    "project-entry-file-missing": ([site(project_app(entry="shop/nothere.py"))], APP_NAME, "entry",
                                   "file not found in the project"),
    "project-and-source": ([site(project_app(source=str(SHOP / "manage.py")))], APP_NAME, "source",
                           "given together with project"),
    "static-url-no-trailing-slash": ([site(project_app(static=[{"url": "/static", "path": "staticfiles"}]))],
                                     APP_NAME, "static.url", "'/static'"),
    "static-url-on-a-mount": (
        [site(project_app(static=[{"url": "/api/", "path": "staticfiles"}]), app(name="api", mount="/api"))],
        APP_NAME, "static.url", "clashes with the mount of app 'api'"),
    "static-path-escaping": ([site(project_app(static=[{"url": "/static/", "path": "../../etc"}]))], APP_NAME,
                             "static.path", "'../../etc'"),
    "env-name-invalid": ([site(project_app(env={"2FAST": "1"}))], APP_NAME, "env.2FAST",
                         "invalid environment variable name"),
    "name-in-env-and-secrets": ([site(project_app(env={"KEY": "a"}, secrets={"KEY": "b"}))], APP_NAME,
                                "secrets.KEY", "is also in env"),
    "secret-not-a-string": ([site(project_app(secrets={"SECRET_KEY": 12345}))], APP_NAME, "secrets.SECRET_KEY",
                            "(hidden)"),
    # Databases (issue "a real database for the fleet's apps").
    "database-name-invalid": ([site(project_app(database={"name": "Shop-DB"}))], APP_NAME, "database.name",
                              "'Shop-DB'"),
    "database-name-reserved": ([site(project_app(database={"name": "postgres"}))], APP_NAME, "database.name",
                               "'postgres'"),
    "database-not-a-mapping": ([site(project_app(database="shop"))], APP_NAME, "database", "'shop'"),
    "database-password-not-a-string": ([site(project_app(database={"name": "shop", "password": 12345}))],
                                       APP_NAME, "database.password", "(hidden)"),
    "database-without-project": ([site(app(database={"name": "shop"}))], APP_NAME, "database",
                                 "does not apply without project"),
    "database-variable-in-env": ([site(project_app(env={"PGHOST": "elsewhere"}, database={"name": "shop"}))],
                                 APP_NAME, "env.PGHOST", "is set by database"),
    "two-apps-one-database": (
        [site(project_app(database={"name": "shop"}),
              project_app(name="blog", mount="/blog", database={"name": "shop"}))],
        "blog", "database.name", "also the database of"),
    "redis-url-in-env": (
        [site(project_app(redis={}, env={"REDIS_URL": "redis://elsewhere:6379/0"}))],
        APP_NAME, "env.REDIS_URL", "is set by redis"),
    "redis-bad-policy": (
        [site(project_app(redis={"maxmemory": "64mb", "policy": "lru"}))],
        APP_NAME, "redis.policy", "noeviction, allkeys-lru"),
    "process-group-name": (
        [site(project_app(processes={"worker": {"command": "celery -A shop worker", "group": "work ers"}}))],
        APP_NAME, "processes.worker.group", "the name of an inventory group"),
    # Backups (issue "nothing lost").
    "backup-state-a-string": ([site(project_app(backup_state="yes"))], APP_NAME, "backup_state", "'yes'"),
    "backup-state-without-project": ([site(app(backup_state=True))], APP_NAME, "backup_state",
                                     "does not apply without project"),
    "two-embedded-projects": (
        [site(project_app(mode="embedded"), project_app(name="blog", mount="/blog", mode="embedded"))],
        "blog", "mode", "a second embedded project app besides"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_stops_before_any_host_changes(run_site: RunSite, case: str) -> None:
    """Each kind of mistake alone is caught on the controller, named by site, app and field."""
    sites, app_name, field, shown = BAD_INPUTS[case]
    run = run_site(sites)
    assert_stopped_by_validation(run)
    line = run.problem(SERVER_NAME, app_name, field)
    assert shown in line, line
    assert run.problem_count == 1 and len(run.problems) == 1, run.output


ACROSS_PLAY = "Validate the apps' databases, Redis instances and processes across the web servers"


def test_a_database_needs_a_database_host(run_site: RunSite) -> None:
    """An app with a database in an inventory without a `databases` group stops before any host changes."""
    run = run_site([site(project_app(database={"name": "shop"}))])
    assert run.returncode != 0, run.output
    assert f"PLAY [{ACROSS_PLAY}]" in run.output, run.output
    assert ("web server ghost-web1, app 'myapp': field 'database': database 'shop' needs a host in the inventory "
            "group 'databases'") in run.output, run.output
    assert HOST_CONTACTED not in run.output, run.output
    assert f"PLAY [{DEPLOY_PLAY}]" not in run.output, run.output
    assert "TASK [Gathering Facts]" not in run.output, run.output


def test_backup_state_needs_a_backups_host(run_site: RunSite) -> None:
    """An app with backup_state in an inventory without a `backups` group stops before any host changes."""
    run = run_site([site(project_app(backup_state=True))])
    assert run.returncode != 0, run.output
    assert f"PLAY [{ACROSS_PLAY}]" in run.output, run.output
    assert ("web server ghost-web1, app 'myapp': field 'backup_state': the state directory needs a host in the "
            "inventory group 'backups' (none there)") in run.output, run.output
    assert HOST_CONTACTED not in run.output, run.output
    assert "TASK [Gathering Facts]" not in run.output, run.output


@pytest.mark.parametrize(("restore", "shown"), [
    ({}, "wsgi_restore_app is missing; allowed: an app with backup_state (myapp)"),
    ({"wsgi_restore_app": "other"}, ("wsgi_restore_app is 'other', which is no app with backup_state on the web "
                                     "servers; allowed: myapp")),
    ({"wsgi_restore_app": "myapp", "wsgi_restore_time": "2999-01-01 00:00:00+00:00"},
     "wsgi_restore_time '2999-01-01 00:00:00+00:00' is in the future"),
    ({"wsgi_restore_app": "myapp", "wsgi_restore_time": "2000-01-01 00:00:00+00:00"},
     "wsgi_restore_time '2000-01-01 00:00:00+00:00' is more than backup_retention_days (14) ago"),
    ({"wsgi_restore_app": "myapp", "wsgi_restore_time": "yesterday"},
     "wsgi_restore_time is 'yesterday'; allowed: a time with its zone"),
])
def test_a_bad_state_restore_stops_before_any_host_changes(run_site: RunSite, restore: dict, shown: str) -> None:
    """restore_state.yml checks the app and the time on the controller, before it reaches a host."""
    run = run_site([site(project_app(backup_state=True))],
                   {"playbook": "playbooks/restore_state.yml", "with_backups": True, **restore})
    assert run.returncode != 0, run.output
    assert shown in run.output, run.output
    assert HOST_CONTACTED not in run.output, run.output
    assert "TASK [Gathering Facts]" not in run.output, run.output
    assert "TASK [Restore the app's state directory" not in run.output, run.output


def test_redis_needs_a_redis_host(run_site: RunSite) -> None:
    """An app with redis in an inventory without a `redis` group stops before any host changes."""
    run = run_site([site(project_app(redis={"maxmemory": "64mb"}))])
    assert run.returncode != 0, run.output
    assert ("web server ghost-web1, app 'myapp': field 'redis': needs a host in the inventory group 'redis' (none "
            "there)") in run.output, run.output
    assert HOST_CONTACTED not in run.output, run.output
    assert "TASK [Gathering Facts]" not in run.output, run.output


def test_all_problems_are_reported_in_one_run(run_site: RunSite) -> None:
    """Two mistakes in two sites come back together, so one run shows everything to fix."""
    run = run_site([
        site(app(name="alpha", mount="/alpha/"), server_name="a.example.com"),
        site(app(name="beta", mount="/beta", threads=0), server_name="b.example.com"),
    ])
    assert_stopped_by_validation(run)
    run.problem("a.example.com", "alpha", "mount")
    run.problem("b.example.com", "beta", "threads")
    assert run.problem_count == 2 and len(run.problems) == 2, run.output


def test_valid_input_passes_validation_and_fails_only_on_the_host(run_site: RunSite) -> None:
    """Control: valid input gets past validation and fails only because the host cannot be reached.

    Without this, every test above could pass for a reason unrelated to validation (a broken
    site.yml, a missing plugin): here the same setup must reach the host play and fail at its first
    contact with the host, the fact gathering, because the container does not exist.
    """
    run = run_site([site(app())])
    assert run.returncode != 0, run.output
    assert "wsgi_sites is invalid" not in run.output, run.output
    assert not run.problems, run.output
    assert f"PLAY [{DEPLOY_PLAY}]" in run.output, run.output
    _, _, from_first_contact = run.output.partition("TASK [Gathering Facts]")
    assert HOST_CONTACTED in from_first_contact, run.output
    assert re.search(r"ghost-web1\s*:.*changed=0\s+unreachable=0\s+failed=1", run.output), run.output


# --------------------------------------------------------------------------- HTTPS (tls)


def make_certificate(directory: Path, names: list[str], *, days: int = 60, past: int = 1, key_of: str = "") -> dict:
    """A key and a self-signed certificate for names in directory (the key of another pair with key_of)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=past)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                   .sign(key, hashes.SHA256()))
    (directory / "site.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "site.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    files = {"certificate": "files", "cert_file": str(directory / "site.pem"), "key_file": str(directory / "site.key")}
    if key_of:
        files["key_file"] = key_of
    return files


def tls_site(tls: Any, **fields: Any) -> dict[str, Any]:
    return {**site(app()), "tls": tls, **fields}


# case id -> (wsgi_sites given the tmp directory for certificate files, field, what the message must show)
BAD_TLS: dict[str, tuple[Callable[[Path], list[dict[str, Any]]], str, str]] = {
    "unknown-certificate-kind": (lambda _: [tls_site({"certificate": "letsencrypt"})], "tls.certificate",
                                 "'letsencrypt'; allowed: one of acme, files, self_signed"),
    "cert-file-missing": (lambda tmp: [tls_site({**make_certificate(tmp, [SERVER_NAME]),
                                                 "cert_file": "/nonexistent/wsgi-bad-input/site.pem"})],
                          "tls.cert_file", "not found"),
    "bad-port": (lambda _: [tls_site({"certificate": "self_signed", "port": 70000})], "tls.port", "70000"),
    "negative-hsts": (lambda _: [tls_site({"certificate": "self_signed", "hsts": -1})], "tls.hsts", "-1"),
    "port-of-a-plain-site": (lambda _: [site(app(name="plain"), server_name="plain.example.com") | {"port": 8443},
                                        tls_site({"certificate": "self_signed", "port": 8443})],
                             "tls.port", "is the plain port of wsgi_sites[0] (server_name 'plain.example.com')"),
    "key-of-another-certificate": (
        lambda tmp: [tls_site(make_certificate(tmp / "a", [SERVER_NAME],
                                               key_of=make_certificate(tmp / "b", [SERVER_NAME])["key_file"]))],
        "tls.key_file", "key_file is not the key of cert_file"),
    "expired-certificate": (lambda tmp: [tls_site(make_certificate(tmp, [SERVER_NAME], past=100, days=90))],
                            "tls.cert_file", "cert_file expired on"),
    "names-not-covered": (lambda tmp: [tls_site(make_certificate(tmp, [SERVER_NAME]),
                                                server_aliases=["example.com"])],
                          "tls.cert_file", "does not cover example.com (its names: www.example.com)"),
    # Behind a site without certificate files: the message names the site by its place in wsgi_sites.
    "second-site-expired": (lambda tmp: [site(app(name="plain"), server_name="plain.example.com"),
                                         tls_site(make_certificate(tmp, [SERVER_NAME], past=100, days=90))],
                            "tls.cert_file", "wsgi_sites[1] (server_name 'www.example.com'): field 'tls.cert_file'"),
}


@pytest.mark.parametrize("case", list(BAD_TLS))
def test_bad_tls_input_stops_before_any_host_changes(run_site: RunSite, tmp_path: Path, case: str) -> None:
    """HTTPS mistakes, certificate contents included, are caught on the controller, named by site and field."""
    make_sites, field, shown = BAD_TLS[case]
    run = run_site(make_sites(tmp_path / "certificates"))
    assert_stopped_by_validation(run)
    lines = [line for line in run.problems if f"(server_name '{SERVER_NAME}'): field '{field}'" in line]
    assert len(lines) == 1 and shown in lines[0], run.output
    assert run.problem_count == 1 and len(run.problems) == 1, run.output
    assert "PRIVATE KEY" not in run.output, run.output


@pytest.mark.parametrize(("more_vars", "shown"), [
    ({}, ('wsgi_acme_contact is ""; allowed: the e-mail address of the ACME account, required because '
         "www.example.com use certificate acme.")),
    ({"wsgi_acme_contact": "webmaster"}, 'wsgi_acme_contact is "webmaster"; allowed: the e-mail address'),
    ({"wsgi_acme_contact": "webmaster@example.com", "wsgi_acme_directory": "http://acme.example.com/dir"},
     'wsgi_acme_directory is "http://acme.example.com/dir"; allowed: the https:// URL of an ACME directory'),
    ({"wsgi_acme_contact": "webmaster@example.com", "wsgi_acme_ca_file": "/nonexistent/wsgi-bad-input/ca.pem"},
     'wsgi_acme_ca_file is "/nonexistent/wsgi-bad-input/ca.pem"; allowed: an empty string'),
    # Behind a balancer, the balancer gets the certificate: its own settings are checked.
    ({"with_balancer": True}, 'wsgi_acme_contact is ""; allowed: the e-mail address of the ACME account'),
])
def test_bad_acme_settings_stop_before_any_host_changes(run_site: RunSite, more_vars: dict, shown: str) -> None:
    behind_balancer = bool(more_vars.get("with_balancer"))
    run = run_site([tls_site({"certificate": "acme"})], dict(more_vars))
    assert run.returncode != 0, run.output
    assert shown in run.output, run.output
    failed_host = "ghost-balancer" if behind_balancer else "ghost-web1"
    assert re.search(rf"{failed_host}\s*:.*changed=0\s+unreachable=0\s+failed=1", run.output), run.output
    assert HOST_CONTACTED not in run.output and f"PLAY [{DEPLOY_PLAY}]" not in run.output, run.output


def test_an_unknown_tls_profile_stops_before_any_host_changes(run_site: RunSite) -> None:
    run = run_site([tls_site({"certificate": "self_signed"})], {"wsgi_tls_profile": "strict"})
    assert run.returncode != 0, run.output
    # The role's argument spec (choices) says it, before any task of the role runs.
    assert "value of wsgi_tls_profile must be one of: modern, intermediate, old, got: strict" in run.output, run.output
    assert HOST_CONTACTED not in run.output and f"PLAY [{DEPLOY_PLAY}]" not in run.output, run.output


def test_a_vaulted_key_that_fits_passes_validation_and_fails_only_on_the_host(run_site: RunSite,
                                                                              tmp_path: Path) -> None:
    """Control for the certificate checks: a valid pair, its key ansible-vault encrypted, gets past them."""
    files = make_certificate(tmp_path / "certificates", [SERVER_NAME, "example.com"])
    password = tmp_path / "vault-password"
    password.write_text("bad-input-test-vault-password\n")
    subprocess.run([str(ANSIBLE_PLAYBOOK.parent / "ansible-vault"), "encrypt", "--vault-password-file",
                    str(password), files["key_file"]], check=True, capture_output=True)
    assert Path(files["key_file"]).read_text().startswith("$ANSIBLE_VAULT;")
    run = run_site([tls_site(files, server_aliases=["example.com"])], None, "--vault-password-file", str(password))
    assert "wsgi_sites is invalid" not in run.output and not run.problems, run.output
    assert f"PLAY [{DEPLOY_PLAY}]" in run.output, run.output
    _, _, from_first_contact = run.output.partition("TASK [Gathering Facts]")
    assert HOST_CONTACTED in from_first_contact, run.output


def test_a_process_group_needs_hosts(run_site: RunSite) -> None:
    """A process that names an inventory group without hosts stops before any host changes."""
    run = run_site([site(project_app(processes={"reports": {"command": "celery -A shop worker", "group": "workers"}}))])
    assert run.returncode != 0, run.output
    assert f"PLAY [{ACROSS_PLAY}]" in run.output, run.output
    assert ("web server ghost-web1, app 'myapp': processes.reports.group 'workers' is no inventory group with hosts; "
            "allowed: an inventory group with at least one host") in run.output, run.output
    assert HOST_CONTACTED not in run.output, run.output
    assert "TASK [Gathering Facts]" not in run.output, run.output
