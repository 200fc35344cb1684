"""mod_md's server-wide settings for the sites with ACME certificates."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from wsgi_acme import FilterModule, wsgi_acme_apache_settings
from wsgi_tls import wsgi_tls_key_spec

DIRECTORY = "https://acme.example.com/dir"


def site(name, certificate="acme", aliases=()):
    return {"server_name": name, "server_aliases": list(aliases), "tls": {"certificate": certificate}}


def test_one_mdomain_per_acme_site_with_its_aliases_and_md_status_for_the_host_only():
    sites = [site("www.example.com", aliases=["shop.example.com"]), site("files.example.com", "files"),
             {"server_name": "plain.example.com", "tls": None}, site("secure.example.com")]
    assert wsgi_acme_apache_settings(sites, DIRECTORY, "webmaster@example.com", "/etc/ssl/ca.pem",
                                     wsgi_tls_key_spec("intermediate"), "/usr/local/lib/acme-message") == [
        f"MDCertificateAuthority {DIRECTORY}",
        "MDCertificateAgreement accepted",
        "MDContactEmail webmaster@example.com",
        "MDPrivateKeys secp256r1",
        "MDStapling on",
        "MDCACertificateFile /etc/ssl/ca.pem",
        "MDMessageCmd /usr/local/lib/acme-message",
        "MDomain www.example.com shop.example.com",
        "MDomain secure.example.com",
        '<Location "/md-status">',
        "    SetHandler md-status",
        "    Require local",
        "</Location>",
    ]


def test_the_old_profile_gets_rsa_keys_and_no_ca_file_means_the_systems():
    lines = wsgi_acme_apache_settings([site("www.example.com")], DIRECTORY, "a@example.com", "",
                                      wsgi_tls_key_spec("old"))
    assert "MDPrivateKeys RSA 2048" in lines
    assert not any(line.startswith(("MDCACertificateFile", "MDMessageCmd")) for line in lines)


def test_no_acme_site_no_lines_and_bad_settings_are_named():
    assert wsgi_acme_apache_settings([site("a.example.com", "self_signed")], "", "") == []
    with pytest.raises(AnsibleFilterError, match="wsgi_acme_contact is ''; allowed: an e-mail address"):
        wsgi_acme_apache_settings([site("a.example.com")], DIRECTORY, "")
    with pytest.raises(AnsibleFilterError, match="wsgi_acme_directory is 'http://x'; allowed: an https:// URL"):
        wsgi_acme_apache_settings([site("a.example.com")], "http://x", "a@example.com")


def test_filter_module_exports_the_filter():
    assert FilterModule().filters() == {"wsgi_acme_apache_settings": wsgi_acme_apache_settings}
