"""Mozilla's TLS profiles in Apache's terms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.shared_rules import (
    HSTS_DEFAULT,
)
from wsgi_tls import (
    PROFILES,
    wsgi_tls_apache_settings,
    wsgi_tls_file_entries,
    wsgi_tls_key_entries,
    wsgi_tls_key_spec,
    wsgi_tls_redirect_lines,
    wsgi_tls_self_signed_entries,
    wsgi_tls_vhost_lines,
)

MOZILLA = json.loads((Path(__file__).parent / "fixtures" / "mozilla-tls-5.7.json").read_text())["configurations"]


@pytest.mark.parametrize("profile", ["modern", "intermediate", "old"])
def test_each_profile_is_mozillas(profile):
    """The values sslyze --mozilla_config compares against, from Mozilla's own file."""
    mozilla, ours = MOZILLA[profile], PROFILES[profile]
    assert list(ours["protocols"]) == mozilla["tls_versions"]
    assert ours["ciphers"].split(":") == (mozilla["openssl_ciphers"] or [""])
    assert ours["server_order"] == mozilla["server_preferred_order"]
    assert ours["certificate_key"] in mozilla["certificate_types"]
    assert ours["certificate_days"] == mozilla["maximum_certificate_lifespan"]
    assert HSTS_DEFAULT == mozilla["hsts_min_age"]
    lines = wsgi_tls_apache_settings(profile, "3.0.15")
    assert f"SSLOpenSSLConfCmd Curves {':'.join(mozilla['tls_curves'])}" in lines
    assert "SSLSessionTickets off" in lines


def test_intermediate_in_apache_terms():
    assert wsgi_tls_apache_settings("intermediate", "3.0.15") == [
        "SSLProtocol -all +TLSv1.2 +TLSv1.3",
        "SSLCipherSuite " + ":".join(MOZILLA["intermediate"]["openssl_ciphers"]),
        "SSLHonorCipherOrder off",
        "SSLOpenSSLConfCmd Curves X25519:prime256v1:secp384r1",
        "SSLSessionTickets off",
    ]


def test_modern_sets_no_tls12_ciphers_and_old_lowers_openssl3s_security_level():
    assert not any(line.startswith("SSLCipherSuite") for line in wsgi_tls_apache_settings("modern", "3.5.1"))
    assert wsgi_tls_apache_settings("modern", "3.5.1")[0] == "SSLProtocol -all +TLSv1.3"
    old = wsgi_tls_apache_settings("old", "3.0.15")
    assert old[1].endswith(":DES-CBC3-SHA:@SECLEVEL=0") and "SSLHonorCipherOrder on" in old
    assert wsgi_tls_apache_settings("old", "1.1.1w")[1].endswith(":DES-CBC3-SHA")


@pytest.mark.parametrize("profile", ["strict", "", None, "Intermediate"])
def test_an_unknown_profile_names_the_variable_and_the_choices(profile):
    with pytest.raises(AnsibleFilterError, match="wsgi_tls_profile is .*allowed: one of modern, intermediate, old"):
        wsgi_tls_apache_settings(profile)


def test_a_host_made_key_fits_its_profile():
    assert wsgi_tls_key_spec("modern") == {"type": "ECC", "size": 256, "curve": "secp256r1", "days": 90}
    assert wsgi_tls_key_spec("intermediate")["type"] == "ECC"
    assert wsgi_tls_key_spec("old") == {"type": "RSA", "size": 2048, "curve": None, "days": 366}


def tls_site(certificate="files", **tls):
    defaults = {"certificate": certificate, "port": 443, "redirect": True, "hsts": 63072000,
                "certificate_path": "/etc/wsgi-hosting/tls/www.example.com-443.crt",
                "key_path": "/etc/wsgi-hosting/tls/www.example.com-443.key"}
    return {"server_name": "www.example.com", "server_aliases": ["shop.example.com"], "tls": {**defaults, **tls}}


def test_an_https_virtualhost_names_its_files_and_offers_h2():
    assert wsgi_tls_vhost_lines(tls_site()) == [
        "SSLEngine on",
        "SSLCertificateFile /etc/wsgi-hosting/tls/www.example.com-443.crt",
        "SSLCertificateKeyFile /etc/wsgi-hosting/tls/www.example.com-443.key",
        "Protocols h2 http/1.1",
        'Header always set Strict-Transport-Security "max-age=63072000"',
    ]


def test_stapling_only_for_a_certificate_with_a_responder_and_hsts_zero_is_off():
    site = tls_site(hsts=0)
    assert "SSLUseStapling on" in wsgi_tls_vhost_lines(site, ["/etc/wsgi-hosting/tls/www.example.com-443.crt"])
    assert "SSLUseStapling on" not in wsgi_tls_vhost_lines(site, ["/etc/wsgi-hosting/tls/other-443.crt"])
    assert not any("Strict-Transport-Security" in line for line in wsgi_tls_vhost_lines(site))


def test_an_acme_site_names_no_files_and_offers_the_tls_alpn_challenge():
    assert wsgi_tls_vhost_lines(tls_site("acme"), ["/etc/wsgi-hosting/tls/www.example.com-443.crt"]) == [
        "SSLEngine on",
        "Protocols h2 http/1.1 acme-tls/1",
        'Header always set Strict-Transport-Security "max-age=63072000"',
    ]


def test_the_redirect_keeps_acme_challenges_and_the_given_paths_and_names_the_https_port():
    assert wsgi_tls_redirect_lines(tls_site(port=8443), ["/healthz", ""]) == [
        "RewriteEngine On",
        r"RewriteCond %{REQUEST_URI} !^/\.well\-known/acme\-challenge/",
        "RewriteCond %{REQUEST_URI} !^/healthz$",
        "RewriteRule ^ https://www.example.com:8443%{REQUEST_URI} [R=308,L]",
    ]


def test_an_acme_site_redirects_once_its_certificate_is_live():
    lines = wsgi_tls_redirect_lines(tls_site("acme"), [], "/var/lib/wsgi-hosting/acme-live")
    assert lines[-3:] == ["RewriteCond %{REQUEST_URI} !^/md\\-status$","RewriteCond /var/lib/wsgi-hosting/acme-live/www.example.com -f",
                          "RewriteRule ^ https://www.example.com%{REQUEST_URI} [R=308,L]"]
    with pytest.raises(AnsibleFilterError, match="needs acme_live_dir"):
        wsgi_tls_redirect_lines(tls_site("acme"))
    with pytest.raises(AnsibleFilterError, match="has no tls"):
        wsgi_tls_redirect_lines({"server_name": "plain.example.com", "tls": None})


# --------------------------------------------------------------------------- the files of the tls role


def _tls_site(name, certificate):
    base = f"/etc/wsgi-hosting/tls/{name}-443"
    return {"server_name": name, "tls": {"certificate": certificate, "certificate_path": base + ".crt",
                                         "key_path": base + ".key", "key_file": f"/ctl/{name}.key"}}


SITES = [_tls_site("a.example", "files"), _tls_site("b.example", "self_signed"), _tls_site("c.example", "acme"),
         _tls_site("d.example", "files")]


def test_the_certificates_go_in_one_list_after_their_root_only_directory():
    entries = wsgi_tls_file_entries(SITES, {"/etc/wsgi-hosting/tls/a.example-443.crt": "A",
                                            "/etc/wsgi-hosting/tls/d.example-443.crt": "D"})
    assert entries == [
        {"path": "/etc/wsgi-hosting/tls", "state": "directory", "owner": "root", "group": "root", "mode": "0700"},
        {"path": "/etc/wsgi-hosting/tls/a.example-443.crt", "content": "A", "owner": "root", "group": "root",
         "mode": "0644"},
        {"path": "/etc/wsgi-hosting/tls/d.example-443.crt", "content": "D", "owner": "root", "group": "root",
         "mode": "0644"},
    ]


def test_only_acme_sites_need_no_directory():
    assert wsgi_tls_file_entries([SITES[2]], {}) == []
    assert [entry["path"] for entry in wsgi_tls_file_entries([SITES[1]], {})] == ["/etc/wsgi-hosting/tls"]


def test_a_certificate_not_read_is_an_error():
    with pytest.raises(AnsibleFilterError, match="no certificate read for a.example"):
        wsgi_tls_file_entries(SITES[:1], {})


def test_the_keys_are_root_only_and_never_diffed_in_the_sites_order():
    assert wsgi_tls_key_entries(SITES, ["KA", "KD"]) == [
        {"path": "/etc/wsgi-hosting/tls/a.example-443.key", "content": "KA", "owner": "root", "group": "root",
         "mode": "0600", "diff": False},
        {"path": "/etc/wsgi-hosting/tls/d.example-443.key", "content": "KD", "owner": "root", "group": "root",
         "mode": "0600", "diff": False},
    ]


def test_a_key_count_other_than_the_files_sites_is_an_error():
    with pytest.raises(AnsibleFilterError, match="1 keys for 2 sites"):
        wsgi_tls_key_entries(SITES, ["KA"])


def test_only_the_self_signed_sites_with_their_names_and_the_profiles_key():
    site = {**_tls_site("b.example", "self_signed"), "server_aliases": ["www.b.example", "b.example"]}
    spec = wsgi_tls_key_spec("modern")
    assert wsgi_tls_self_signed_entries([SITES[0], site, SITES[2]], spec) == [
        {"key_path": "/etc/wsgi-hosting/tls/b.example-443.key",
         "certificate_path": "/etc/wsgi-hosting/tls/b.example-443.crt", "names": ["b.example", "www.b.example"],
         "key": {"type": "ECC", "size": 256, "curve": "secp256r1"}, "days": spec["days"]},
    ]
    assert wsgi_tls_self_signed_entries([SITES[0]], spec) == []
