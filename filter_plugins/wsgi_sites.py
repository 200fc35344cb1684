"""The filters of wsgi_sites: thin wrappers over the collection's module_utils, where the logic lives.

- plugins/module_utils/wsgi_fields.py: the table of the fields of a site and an app (FIELDS) and their
  checkers, each problem named by site, app and field;
- plugins/module_utils/wsgi_checks.py: the checks across entries, wsgi_normalize_sites and the one model
  of a host's sites (wsgi_host_model), with the secret values handed apart;
- plugins/module_utils/wsgi_directives.py: render-ready values for the VirtualHost template.

The names below are this file's public interface (the filters, and what the tests and
scripts/gen_schema_docs.py read: the table and the keys it gives).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.wsgi_hosting.debian.plugins.module_utils.shared_rules import (
    is_database_name,
)
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.wsgi_checks import (
    wsgi_database_password_values,
    wsgi_host_model,
    wsgi_normalize_sites,
    wsgi_redis_password_values,
    wsgi_secret_values,
    wsgi_settings_problems,
    wsgi_sites_without_tls,
    wsgi_tls_front_sites,
)
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.wsgi_directives import (
    wsgi_apps,
    wsgi_daemon_directive_options,
    wsgi_daemon_groups,
    wsgi_forwarded_allow_ips,
    wsgi_health_checks,
    wsgi_host_packages,
    wsgi_layout_files,
    wsgi_proxy_passes,
    wsgi_script_aliases,
    wsgi_script_files,
)
from ansible_collections.wsgi_hosting.debian.plugins.module_utils.wsgi_fields import (
    APP_KEYS,
    DAEMON_OPTIONS,
    FIELDS,
    MISSING,
    MODE_KEYS,
    SITE_KEYS,
    project_user,
)

__all__ = [
    "APP_KEYS", "DAEMON_OPTIONS", "FIELDS", "MISSING", "MODE_KEYS", "SITE_KEYS", "FilterModule", "is_database_name",
    "project_user", "wsgi_apps", "wsgi_daemon_directive_options", "wsgi_daemon_groups",
    "wsgi_database_password_values", "wsgi_forwarded_allow_ips", "wsgi_health_checks", "wsgi_host_model",
    "wsgi_host_packages", "wsgi_layout_files", "wsgi_normalize_sites", "wsgi_proxy_passes", "wsgi_redis_password_values",
    "wsgi_script_aliases", "wsgi_script_files", "wsgi_secret_values",
    "wsgi_settings_problems",
    "wsgi_sites_without_tls", "wsgi_tls_front_sites",
]


class FilterModule:
    """Ansible entry point: the filters the wsgi roles use on wsgi_sites."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Map filter names to functions."""
        return {
            "wsgi_normalize_sites": wsgi_normalize_sites,
            "wsgi_host_model": wsgi_host_model,
            "wsgi_secret_values": wsgi_secret_values,
            "wsgi_settings_problems": wsgi_settings_problems,
            "wsgi_database_password_values": wsgi_database_password_values,
            "wsgi_redis_password_values": wsgi_redis_password_values,
            "wsgi_tls_front_sites": wsgi_tls_front_sites,
            "wsgi_apps": wsgi_apps,
            "wsgi_health_checks": wsgi_health_checks,
            "wsgi_host_packages": wsgi_host_packages,
            "wsgi_layout_files": wsgi_layout_files,
            "wsgi_script_files": wsgi_script_files,
            "wsgi_daemon_directive_options": wsgi_daemon_directive_options,
            "wsgi_daemon_groups": wsgi_daemon_groups,
            "wsgi_script_aliases": wsgi_script_aliases,
            "wsgi_proxy_passes": wsgi_proxy_passes,
            "wsgi_forwarded_allow_ips": wsgi_forwarded_allow_ips,
        }
