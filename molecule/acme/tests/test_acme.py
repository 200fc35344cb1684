"""ACME on a web server that ends TLS itself (no balancers): mod_md gets the site's certificate from the
scenario's Pebble, which validates the challenges against this host for real; requests go over real TLS
from the controller to the published ports, verified against Pebble's root."""

from __future__ import annotations

import json

import pytest
from conftest import (
    assert_a_renewal_goes_live_by_itself,
    issuer_name,
    pebble_root,
    served_certificate,
    tls_context,
)

testinfra_hosts = ["webservers"]

WWW, APEX = "www.example.com", "example.com"


@pytest.fixture(scope="module", name="pebble_root")
def pebble_root_fixture() -> str:
    return pebble_root()


def test_the_certificate_is_pebbles_for_every_name_of_the_site(lab, pebble_root):
    for name in (WWW, APEX):
        certificate = served_certificate(lab, name, pebble_root)
        assert issuer_name(certificate).startswith("Pebble Intermediate CA"), certificate["issuer"]
    names = {value for kind, value in served_certificate(lab, WWW, pebble_root)["subjectAltName"] if kind == "DNS"}
    assert names == {WWW, APEX}


def test_the_app_answers_over_https_with_hsts(lab, pebble_root):
    response = lab.https("/x?y=1", APEX, tls_context(cadata=pebble_root))
    assert response.status == 200, response.text
    assert response.json()["url_scheme"] == "https" and response.json()["path_info"] == "/x"
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000"


def test_the_plain_port_redirects_once_the_certificate_is_live(host, lab):
    assert host.file(f"/var/lib/wsgi-hosting/acme-live/{WWW}").exists  # acme-message's note, at the reload
    response = lab.request("/some/path?a=1&b=two%20words", WWW)
    assert response.status == 308, response.text
    assert response.headers["Location"] == f"https://{WWW}/some/path?a=1&b=two%20words"
    # ACME's challenges and the health check stay on the plain port.
    assert lab.request("/.well-known/acme-challenge/no-such-token", WWW).status == 404
    assert lab.request("/healthz", WWW).status == 200


def test_md_status_answers_the_host_only_beside_an_app_at_the_root(host, lab):
    status = json.loads(host.check_output("curl -sf -H 'Host: www.example.com' http://127.0.0.1/md-status"))
    [domain] = status["managed-domains"]
    assert domain["name"] == WWW and domain["domains"] == [WWW, APEX]
    assert lab.request("/md-status", WWW).status == 403


def test_a_renewed_certificate_goes_live_without_a_person(host, lab, pebble_root):
    assert_a_renewal_goes_live_by_itself(host, lab, WWW, pebble_root)
