"""sslyze checks the HTTPS site against Mozilla's intermediate profile (the default wsgi_tls_profile), on
one host of each Debian version: the profile is global to Apache, not to a mode, and OpenSSL differs by
release (3.0 in Debian 12, 3.5 in Debian 13).

The site is apps.example.com, whose certificate comes from the scenario's CA, which sslyze is given to
trust: a self-signed certificate would fail its path validation, as it fails a browser's.
"""

from __future__ import annotations

import os
from pathlib import Path

from conftest import sslyze

testinfra_hosts = ["daemon"]

CA_FILE = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "tls" / "ca.pem"


def test_the_site_is_compliant_with_mozillas_intermediate_profile(lab):
    port = lab.published(443)
    result = sslyze("apps.example.com", port, CA_FILE)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"apps.example.com:{port}: OK - Compliant." in result.stdout, result.stdout[-4000:]
