"""ACME on a web server that ends TLS itself (no balancers): mod_md gets the site's certificate from the
scenario's Pebble, which validates the challenges against this host for real; requests go over real TLS
from the controller to the published ports, verified against Pebble's root."""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path

import pytest
from conftest import (
    assert_a_renewal_goes_live_by_itself,
    issuer_name,
    pebble_root,
    served_certificate,
    sslyze,
    tls_context,
)

testinfra_hosts = ["webservers"]

WWW, APEX, STATIC = "www.example.com", "example.com", "static.example.com"
CA_FILE = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "tls" / "ca.pem"


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


def test_the_files_site_is_compliant_with_mozillas_modern_profile(lab):
    # static.example.com rather than the ACME site: the modern profile wants an ECDSA-signed certificate,
    # and Pebble's CA signs with RSA.
    result = sslyze(STATIC, lab.published(443), CA_FILE, profile="modern")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{STATIC}:{lab.published(443)}: OK - Compliant." in result.stdout, result.stdout[-4000:]


def test_both_sites_speak_tls_1_3_only(lab, pebble_root):
    for name, trusted in ((WWW, {"cadata": pebble_root}), (STATIC, {"cafile": CA_FILE})):
        with lab.tls_socket(name, tls_context(**trusted)) as tls:
            assert tls.version() == "TLSv1.3", name
        tls12 = tls_context(**trusted)
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            lab.tls_socket(name, tls12).close()


def test_a_renewed_certificate_goes_live_without_a_person(host, lab, pebble_root):
    assert_a_renewal_goes_live_by_itself(host, lab, WWW, pebble_root)
