"""The wsgi_settings_problems filter: the settings other roles take from the wsgi role, checked in one go.

Each problem names the variable, shows its value as JSON and says what is allowed, as the asserts it
replaces did (tests/test_bad_input.py runs them through a playbook); nothing wrong gives an empty string.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from wsgi_sites import FilterModule, wsgi_settings_problems

ACME = [{"server_name": "www.example.com"}, {"server_name": "shop.example.com"}]
GOOD_ACME = {"acme_contact": "webmaster@example.com", "acme_directory": "https://acme.example.com/dir"}


@pytest.mark.parametrize("health_path", ["", "/healthz", "/-/health.check", "/a/b~c"])
@pytest.mark.parametrize("keep", [1, 3, "5"])
def test_good_settings_have_no_problem(health_path, keep) -> None:
    assert wsgi_settings_problems(health_path, keep) == ""
    assert wsgi_settings_problems(health_path, keep, ACME, **GOOD_ACME) == ""


@pytest.mark.parametrize("health_path", ["healthz", "/healthz/", "/a/../b", "/a b", "/.hidden", 7, None])
def test_a_bad_health_path_is_named_with_what_is_allowed(health_path) -> None:
    problems = wsgi_settings_problems(health_path, 3)
    assert problems.startswith("wsgi_health_path is ")
    assert "allowed: an empty string (no health check) or a URL path like /healthz" in problems


@pytest.mark.parametrize(("keep", "shown"), [(0, "0"), (-1, "-1"), ("x", '"x"'), (True, "true"), (None, "null"),
                                             (2.5, "2.5")])
def test_bad_releases_kept_are_named_with_what_is_allowed(keep, shown) -> None:
    assert wsgi_settings_problems("/healthz", keep) == (
        f"wsgi_keep_releases is {shown}; allowed: an integer of at least 1 (the releases kept per project app "
        "on each host, the live one included).")


def test_the_acme_account_is_checked_only_for_acme_sites() -> None:
    assert wsgi_settings_problems("/healthz", 3, [], acme_contact="", acme_directory="http://x") == ""
    problems = wsgi_settings_problems("/healthz", 3, ACME, acme_contact="webmaster", acme_directory="http://x",
                                      acme_ca_file="/nonexistent/ca.pem", acme_ca_source="/nonexistent/ca.pem")
    assert problems.split("\n") == [
        ('wsgi_acme_contact is "webmaster"; allowed: the e-mail address of the ACME account, required because '
        "www.example.com, shop.example.com use certificate acme."),
        ('wsgi_acme_directory is "http://x"; allowed: the https:// URL of an ACME directory (default Let\'s '
        "Encrypt's, https://acme-v02.api.letsencrypt.org/directory)."),
        ('wsgi_acme_ca_file is "/nonexistent/ca.pem"; allowed: an empty string (the system\'s CAs) or the path of '
        "a PEM bundle on the controller (relative to wsgi_source_dir)."),
    ]


def test_the_ca_file_is_looked_for_on_the_controller(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    assert wsgi_settings_problems("/healthz", 3, ACME, acme_ca_file="ca.pem",
                                  acme_ca_source=str(tmp_path / "ca.pem"), **GOOD_ACME) == ""
    assert "wsgi_acme_ca_file" in wsgi_settings_problems("/healthz", 3, ACME, acme_ca_file="ca.pem",
                                                         acme_ca_source=str(tmp_path), **GOOD_ACME)


def test_every_problem_at_once() -> None:
    assert len(wsgi_settings_problems("x", 0, ACME).split("\n")) == 4


def test_the_filter_is_registered() -> None:
    assert FilterModule().filters()["wsgi_settings_problems"] is wsgi_settings_problems
