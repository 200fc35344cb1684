"""HTTPS on web servers without a balancer, in every mode: a self-signed site that only redirects its plain
port, and a site with certificate files from the scenario's CA (prepare.yml) that keeps serving plain HTTP.

Requests go over real TLS sockets to the published port 443, verified against the certificate the host
made (self-signed) or the scenario's CA, with the site's name in SNI.
"""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path

from conftest import tls_context

testinfra_hosts = ["webservers"]

SECURE = "secure.example.com"
APPS = "apps.example.com"
TLS_DIR = "/etc/wsgi-hosting/tls"
CA_FILE = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "tls" / "ca.pem"


def self_signed(host) -> ssl.SSLContext:
    return tls_context(cadata=host.file(f"{TLS_DIR}/{SECURE}-443.crt").content_string)


def test_the_self_signed_site_answers_over_https_for_each_of_its_names(host, lab):
    for name in (SECURE, f"www.{SECURE}"):
        response = lab.https("/x?y=1", name, self_signed(host))
        assert response.status == 200, (name, response.text)
        report = response.json()
        assert report["url_scheme"] == "https" and report["path_info"] == "/x", report
        assert response.headers["Strict-Transport-Security"] == "max-age=63072000", name


def test_the_plain_port_answers_308_to_https_with_the_same_path_and_query(lab):
    response = lab.request("/some/path?a=1&b=two%20words", SECURE)
    assert response.status == 308, response.text
    assert response.headers["Location"] == f"https://{SECURE}/some/path?a=1&b=two%20words"
    assert "Strict-Transport-Security" not in response.headers  # HSTS only over HTTPS (RFC 6797)
    # The balancers' and the rollout's health check stays on the plain port.
    assert lab.request("/healthz", SECURE).status == 200


def test_keys_are_root_only_and_certificates_public(host):
    directory = host.file(TLS_DIR)
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o700)
    for name in (SECURE, APPS):
        key, certificate = host.file(f"{TLS_DIR}/{name}-443.key"), host.file(f"{TLS_DIR}/{name}-443.crt")
        assert (key.user, key.group, key.mode) == ("root", "root", 0o600), name
        assert (certificate.user, certificate.mode) == ("root", 0o644), name


def test_the_file_certificate_is_the_one_given_with_its_chain(host, lab):
    installed = host.file(f"{TLS_DIR}/{APPS}-443.crt").content_string
    given = (CA_FILE.parent / "apps.pem").read_text().strip()
    assert installed.startswith(given), installed
    assert CA_FILE.read_text().strip() in installed  # the chain follows the certificate
    key = host.file(f"{TLS_DIR}/{APPS}-443.key").content_string
    assert key == (CA_FILE.parent / "apps.key").read_text()
    # Verified against the scenario's CA; the plain port keeps serving (redirect: false), without HSTS.
    assert lab.https("/healthz", APPS, tls_context(cafile=CA_FILE)).status == 200
    plain = lab.request("/healthz", APPS)
    assert plain.status == 200 and "Strict-Transport-Security" not in plain.headers


def test_http2_is_offered_and_protocols_older_than_tls12_are_refused(host, lab):
    h2 = self_signed(host)
    h2.set_alpn_protocols(["h2", "http/1.1"])
    with lab.tls_socket(SECURE, h2) as sock:
        assert sock.selected_alpn_protocol() == "h2"
        assert sock.version() == "TLSv1.3"
    tls12 = self_signed(host)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with lab.tls_socket(SECURE, tls12) as sock:
        assert sock.version() == "TLSv1.2"
        assert sock.cipher()[0] in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                                    "ECDHE-ECDSA-CHACHA20-POLY1305"), sock.cipher()
    # A client that would take TLS 1.1 (its own security level lowered so that the refusal is the server's).
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        with lab.tls_socket(SECURE, old) as sock:
            raise AssertionError(f"the server accepted {sock.version()}")
    except ssl.SSLError as error:
        assert "PROTOCOL_VERSION" in error.reason or "UNSUPPORTED_PROTOCOL" in error.reason, error


def test_the_app_sees_https_and_cannot_be_told_so_over_plain_http(host, lab):
    """wsgi.url_scheme is https over HTTPS; X-Forwarded-Proto/-For from a client change neither the scheme
    nor REMOTE_ADDR, in the mode of this host."""
    assert lab.https("/", SECURE, self_signed(host)).json()["url_scheme"] == "https"
    spoofed = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9", "Forwarded": "proto=https"}
    report = lab.request("/echo", "www.example.com", headers=spoofed).json()
    assert report["url_scheme"] == "http", report
    assert report["remote_addr"] != "203.0.113.9", report


def test_a_django_app_knows_its_request_is_secure(host, lab):
    """request.is_secure() in the Django project on this host (daemon and proxy mode; embedded runs none)."""
    shops = [app for site, app in lab.projects() if site["server_name"] == APPS
             and app.get("env", {}).get("DJANGO_SETTINGS_MODULE")]
    assert shops or lab.name.startswith("embedded"), lab.name
    for app in shops:
        path = app["mount"].rstrip("/") + "/environment"
        assert lab.https(path, APPS, tls_context(cafile=CA_FILE)).json()["is_secure"] is True, app["name"]
        spoofed = lab.request(path, APPS, headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
        assert spoofed.json()["is_secure"] is False and spoofed.json()["remote_addr"] != "203.0.113.9", spoofed.text


def test_apache_logs_the_https_requests_of_the_site(host, lab):
    lab.https("/logged-over-https", SECURE, self_signed(host))
    log = host.file(f"/var/log/apache2/{SECURE}-80-access.log").content_string
    assert '"GET /logged-over-https HTTP/1.1" 200' in log


def test_the_health_check_asks_https_sites_over_https(host):
    checks = json.loads(host.file("/usr/local/www/wsgi-scripts/health/checks.json").content_string)
    secure = [check for check in checks if check["server_name"] == SECURE]
    assert secure and all(check["tls"] and check["port"] == 443 for check in secure), checks
