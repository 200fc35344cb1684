"""Documentation of the wsgi_tls_files action (plugins/action/wsgi_tls_files.py), read by ansible-doc.

The action runs on the controller only; there is no module code, as for any action-only plugin of a
collection.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wsgi_tls_files
author: wsgi-hosting maintainers
version_added: "1.0.0"
short_description: Check the certificate files of WSGI sites on the controller
description:
  - For every site with C(tls.certificate) C(files) (normalized by the wsgi_normalize_sites filter, which
    resolved the paths), reads the certificate, the key and the optional chain on the controller - an
    ansible-vault encrypted file is decrypted first - and fails, before any host changes, when the key is
    not the certificate's, the certificate has expired or is not valid yet, its subjectAltNames do not
    cover the site's server_name and every alias (a wildcard alias needs the same wildcard), or the chain
    does not start with the certificate's issuer.
  - The message lists every problem of every site in the form of the wsgi_sites problems (site, field) and
    never contains a key.
  - Changes nothing, needs no connection to the host, and runs the same in check mode.
options:
  sites:
    description: All the normalized sites (a message names a site by its index, or by its C(index) key where
      it has one, as the front sites of wsgi_model do); those without
      C(tls.certificate) C(files) are skipped.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Check the certificate files of the sites on the controller
  wsgi_hosting.debian.wsgi_tls_files:
    sites: "{{ wsgi_model.sites }}"
  register: wsgi_tls_files_result
"""

RETURN = r"""
certificates:
  description: Each checked site's certificate followed by its chain, one PEM text (public), by the path
    it gets on the host (the site's normalized tls.certificate_path).
  returned: success
  type: dict
stapled:
  description: The certificate paths (as in certificates) whose certificate names an OCSP responder, so
    that Apache staples its answer (SSLUseStapling).
  returned: success
  type: list
  elements: str
"""
