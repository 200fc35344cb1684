"""HTTPS at the balancer: the balancer ends TLS for the web servers' sites with tls, the web servers behind it
serve plain HTTP and learn the client's address and scheme from the balancer alone.

www.example.com (and its alias shop.example.com) and secure.example.com get their certificates from the
scenario's ACME server, Pebble (prepare.yml), which validates mod_md's challenges against the balancer for
real; board.example.com has a self-signed one. Requests go over real TLS sockets: from the controller to the
balancer's published ports, and from the database host, a client on the fleet's network whose address is
known, to the balancer itself.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from conftest import (
    assert_a_renewal_goes_live_by_itself,
    inventory_host,
    issuer_name,
    pebble_root,
    served_certificate,
    sslyze,
    tls_context,
)

testinfra_hosts = ["fleet-balancer"]

WWW, SHOP, SECURE, BOARD = "www.example.com", "shop.example.com", "secure.example.com", "board.example.com"
WEB_SERVERS = ["fleet-web1", "fleet-web2", "fleet-web3"]
SPOOFED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"}

# A client on the fleet's network (the database host): one request to the balancer, over HTTPS (with
# SNI, verifying against the given root) or plain HTTP, with extra headers; prints status, headers, body.
CLIENT = r"""
import http.client, json, socket, ssl, sys
scheme, name, path, headers, root = json.loads(sys.argv[1])
conn = http.client.HTTPConnection(name, timeout=30)
sock = socket.create_connection(("fleet-balancer", 443 if scheme == "https" else 80), timeout=30)
conn.sock = ssl.create_default_context(cadata=root).wrap_socket(sock, server_hostname=name) if scheme == "https" else sock
conn.request("GET", path, headers={"Host": name, **headers})
response = conn.getresponse()
print(json.dumps([response.status, dict(response.getheaders()), response.read().decode()]))
"""


@pytest.fixture(scope="module", name="pebble_root")
def pebble_root_fixture() -> str:
    return pebble_root()


@pytest.fixture(scope="module")
def client():
    """The database host as a client of the balancer, and its address (what the apps must see)."""
    db = inventory_host("fleet-db")
    address = db.check_output("getent ahostsv4 fleet-db | head -1 | cut -d' ' -f1")

    def request(scheme: str, name: str, path: str, root: str = "", headers: dict | None = None) -> tuple:
        argument = json.dumps([scheme, name, path, headers or {}, root or None])
        status, response_headers, body = json.loads(db.check_output(f"python3 -c {quote(CLIENT)} {quote(argument)}"))
        return status, response_headers, body

    request.address = address
    return request


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def test_the_acme_certificates_are_pebbles_and_cover_every_name(lab, pebble_root):
    for name in (WWW, SHOP, SECURE):
        # Verified against Pebble's root, with the name checked against the certificate's names.
        certificate = served_certificate(lab, name, pebble_root)
        assert issuer_name(certificate).startswith("Pebble Intermediate CA"), (name, certificate["issuer"])
    names = {value for kind, value in served_certificate(lab, WWW, pebble_root)["subjectAltName"] if kind == "DNS"}
    assert names == {WWW, SHOP}
    response = lab.https("/catalog/environment", SHOP, tls_context(cadata=pebble_root))
    assert response.status == 200 and response.json()["scheme"] == "https", response.text
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000"


def test_the_self_signed_site_is_served_by_the_balancer_and_the_web_servers_keep_plain_http(host, lab):
    tls_dir = host.file("/etc/wsgi-hosting/tls")
    assert (tls_dir.user, tls_dir.mode) == ("root", 0o700)
    key = host.file(f"/etc/wsgi-hosting/tls/{BOARD}-443.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    certificate = host.file(f"/etc/wsgi-hosting/tls/{BOARD}-443.crt").content_string
    response = lab.https("/notes.json", BOARD, tls_context(cadata=certificate))
    assert response.status == 200, response.text
    assert response.headers["Strict-Transport-Security"] == "max-age=600"
    assert lab.request("/notes.json", BOARD).status == 200  # redirect: false
    for name in WEB_SERVERS:
        web = inventory_host(name)
        assert not web.socket("tcp://0.0.0.0:443").is_listening, name
        assert not web.file("/etc/wsgi-hosting/tls").exists, name


def test_http2_is_negotiated(lab, pebble_root, tmp_path):
    root = tmp_path / "pebble-root.pem"
    root.write_text(pebble_root)
    port = lab.published(443)
    result = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", str(root), "--resolve", f"{WWW}:{port}:127.0.0.1",
         "-o", "/dev/null", "-w", "%{http_version}", f"https://{WWW}:{port}/catalog/environment"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert (result.returncode, result.stdout) == (0, "2"), result.stderr


def test_the_plain_port_redirects_to_https_except_acme_challenges(lab):
    response = lab.request("/some/path?a=1&b=two%20words", SECURE)
    assert response.status == 308, response.text
    assert response.headers["Location"] == f"https://{SECURE}/some/path?a=1&b=two%20words"
    assert "Strict-Transport-Security" not in response.headers
    # mod_md answers the challenges it is waiting for; any other token is not found, and not redirected.
    assert lab.request("/.well-known/acme-challenge/no-such-token", SECURE).status == 404
    assert lab.request("/catalog/environment", WWW).status == 200  # redirect: false


def test_apps_in_every_mode_see_https_and_the_clients_address_which_a_client_cannot_spoof(client, pebble_root):
    """Through the balancer over HTTPS from a client on the fleet's network, with X-Forwarded-For and
    X-Forwarded-Proto of its own: daemon mode (the echo app and Django), proxy mode (headrace) and embedded
    mode see https and the client's own address; over plain HTTP with X-Forwarded-Proto https, http."""
    reports = {
        "daemon": ("/", lambda r: (r["url_scheme"], r["remote_addr"]), WWW),
        "proxy": ("/catalog/environment", lambda r: (r["scheme"], r["remote_addr"]), WWW),
        "embedded": ("/catalog-embedded/environment", lambda r: (r["scheme"], r["remote_addr"]), WWW),
        "django": ("/environment", lambda r: ("https" if r["is_secure"] else "http", r["remote_addr"]), BOARD),
    }
    board_root = inventory_host("fleet-balancer").file(f"/etc/wsgi-hosting/tls/{BOARD}-443.crt").content_string
    for mode, (path, seen, name) in reports.items():
        root = board_root if name == BOARD else pebble_root
        status, _, body = client("https", name, path, root, SPOOFED)
        assert status == 200, (mode, body)
        assert seen(json.loads(body)) == ("https", client.address), (mode, body)
        status, _, body = client("http", name, path, headers={**SPOOFED, "X-Forwarded-Proto": "https"})
        assert status == 200, (mode, body)
        assert seen(json.loads(body)) == ("http", client.address), (mode, body)


def test_the_web_servers_log_the_clients_address(client, pebble_root):
    marker = f"/logged-through-the-balancer-{time.time_ns()}"
    status, headers, _ = client("https", WWW, marker, pebble_root, SPOOFED)
    assert status == 200  # the echo app, mounted at /
    member = inventory_host(headers["X-Balancer-Member"])
    log = member.file(f"/var/log/apache2/{WWW}-80-access.log").content_string
    lines = [line for line in log.splitlines() if marker in line]
    assert len(lines) == 1 and lines[0].startswith(f"{client.address} "), lines


def test_md_status_answers_the_balancer_host_only(host, lab):
    status = host.check_output("python3 -c 'import urllib.request; print(urllib.request.urlopen("
                               '"http://127.0.0.1/md-status").read().decode())\'')
    domains = {md["name"]: md for md in json.loads(status)["managed-domains"]}
    assert set(domains) == {WWW, SECURE}
    assert lab.request("/md-status", WWW).status == 403


def test_the_balancer_is_compliant_with_mozillas_intermediate_profile(lab, pebble_root, tmp_path):
    root = tmp_path / "pebble-root.pem"
    root.write_text(pebble_root)
    result = sslyze(WWW, lab.published(443), root)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{WWW}:{lab.published(443)}: OK - Compliant." in result.stdout, result.stdout[-4000:]


def test_testssl_finds_nothing_vulnerable(lab, tmp_path):
    """testssl.sh's vulnerability checks (Heartbleed, ROBOT, POODLE, SWEET32, ...): it exits 0 whatever it
    finds, so its JSON findings are read; every one must be OK or INFO."""
    report = tmp_path / "testssl.json"
    result = subprocess.run(
        ["testssl", "--quiet", "--color", "0", "--vulnerable", "--ip", "127.0.0.1", "--nodns", "none",
         "--warnings", "off", "--jsonfile", str(report), f"{WWW}:{lab.published(443)}"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    findings = json.loads(report.read_text()) if report.exists() else []
    assert {finding["id"] for finding in findings} >= {"heartbleed", "ROBOT", "POODLE_SSL", "SWEET32"}, result.stdout
    bad = [(f["id"], f["severity"], f["finding"]) for f in findings if f["severity"] not in ("OK", "INFO")]
    assert bad == [], result.stdout[-3000:]


def test_a_renewed_certificate_goes_live_without_a_person(host, lab, pebble_root):
    assert_a_renewal_goes_live_by_itself(host, lab, WWW, pebble_root)
