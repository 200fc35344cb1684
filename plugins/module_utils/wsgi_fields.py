"""The fields of a WSGI site and of an app: the one table (FIELDS) and the checker of each field.

``FIELDS`` is the one table of the fields of a site and of an app (level, modes, type, default, checker,
one-line doc): the known keys, the defaults, the mode rules and the normalization of one app come from
it, and scripts/gen_schema_docs.py renders the wsgi role's meta/argument_specs.yml and README table from
it. ``DERIVED`` lists the keys the normalizer adds so templates only loop over ready values. Every
problem is collected (``Errors``) with a message that names the site, the app, the field, the bad value
and what is allowed; wsgi_checks.py checks entries against each other and builds the host's model.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import keyword
import os
import posixpath
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from ansible_collections.wsgi_hosting.debian.plugins.module_utils.shared_rules import (
    HSTS_DEFAULT,
    REDIS_MEMORY_RE,
    REDIS_POLICIES,
    command_words,
    is_database_name,
    is_password,
)

MODES = ("embedded", "daemon", "proxy")
LOG_LEVELS = (
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
    *(f"trace{n}" for n in range(1, 9)),
)

# Options accepted by WSGIDaemonProcess, taken from the option parser of mod_wsgi 4.x/5.0
# (wsgi_add_daemon_process) and its docs/configuration-directives/WSGIDaemonProcess.rst.
# Options only in newer, unreleased-for-Debian docs (interrupt-timeout, switch-interval)
# are left out on purpose: Debian's module would refuse to start with them.
DAEMON_OPTIONS = (
    "chroot", "connect-timeout", "cpu-priority", "cpu-time-limit", "deadlock-timeout",
    "display-name", "eviction-timeout", "graceful-timeout", "group", "header-buffer-size",
    "home", "inactivity-timeout", "lang", "listen-backlog", "locale", "maximum-requests",
    "memory-limit", "processes", "python-eggs", "python-home", "python-path",
    "queue-timeout", "receive-buffer-size", "request-timeout", "response-buffer-size",
    "response-socket-timeout", "restart-interval", "script-group", "script-user",
    "send-buffer-size", "server-metrics", "shutdown-timeout", "socket-timeout",
    "socket-user", "stack-size", "startup-timeout", "supplementary-groups", "threads",
    "umask", "user", "virtual-memory-limit",
)
# Options the role renders itself from a dedicated field (or, for group, fixes).
OPTION_FIELDS = {
    "processes": "wsgi_processes",
    "threads": "threads",
    "display-name": "display_name",
    "user": "user",
}
NON_NEGATIVE_INT_OPTIONS = frozenset({
    "connect-timeout", "cpu-time-limit", "deadlock-timeout", "eviction-timeout",
    "graceful-timeout", "header-buffer-size", "inactivity-timeout", "listen-backlog",
    "maximum-requests", "memory-limit", "queue-timeout", "receive-buffer-size",
    "request-timeout", "response-buffer-size", "response-socket-timeout",
    "restart-interval", "send-buffer-size", "shutdown-timeout", "socket-timeout",
    "stack-size", "startup-timeout", "virtual-memory-limit",
})
ABSOLUTE_PATH_OPTIONS = frozenset({"chroot", "home", "python-home", "python-eggs"})

LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
HOSTNAME_RE = re.compile(rf"^{LABEL}(\.{LABEL})*$")
APP_NAME_RE = re.compile(r"^[a-z0-9_-]{1,64}$")
MOUNT_RE = re.compile(r"^/$|^(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$")
PROCESS_GROUP_RE = re.compile(r"^[A-Za-z0-9._-]+$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
DIGITS_RE = re.compile(r"^[0-9]+$")
UNSAFE_CHARS_RE = re.compile(r"[\s\"'\x00-\x1f\x7f]")

MISSING = object()
# A project that was given but is invalid (already reported): its app is a project app whose project
# fields are not checked further, so one mistake gives one message.
BAD_PROJECT = "(invalid project)"
UNIX_PREFIX = "unix:"

# Project apps: where their releases live on the host (under wsgi_base_dir, beside documents/ and
# wsgi-scripts/) and their state directory, which systemd's StateDirectory= puts under /var/lib.
APPS_SUBDIR = "apps"
STATE_BASE = "/var/lib/wsgi-apps"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A process type of a project app: part of its systemd unit's name and of its journal identifier.
PROCESS_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
PROCESS_KEYS = ("command", "count", "stop_timeout", "group")
# processes.<name>.group: an inventory group's name as Ansible takes it without a warning.
GROUP_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
JOB_KEYS = ("name", "command", "on_calendar", "timeout")
COMMAND_ALLOWED = ("a command line on one line, quotes balanced, run (without a shell) in the live release with its "
                   "venv first on PATH")
ENTRY_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Set by the roles themselves in every mode; an app may not override them.
RESERVED_ENV = frozenset({"STATE_DIRECTORY", "VIRTUAL_ENV", "PATH", "PYTHONPATH", "PYTHONHOME"})
# What an app with a database gets in its environment, as secrets: a URL and libpq's own variables.
DATABASE_ENV = ("DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE")
REDIS_ENV = "REDIS_URL"


# HTTPS (site field tls): where certificates come from (acme: Apache's mod_md, which keeps its own store),
# and where the host keeps the ones it is given or makes (root-only keys).
TLS_CERTIFICATES = ("acme", "files", "self_signed")
TLS_KEYS = ("certificate", "cert_file", "key_file", "chain_file", "port", "redirect", "hsts")
TLS_FILES = ("cert_file", "key_file", "chain_file")
TLS_DIR = "/etc/wsgi-hosting/tls"


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Where:
    """Where a value sits, so every message can point the user at the exact entry."""

    site_index: int | None = None
    server_name: Any = None
    app_index: int | None = None
    app_name: Any = None

    def __str__(self) -> str:
        if self.site_index is None:
            return "wsgi_sites"
        text = f"wsgi_sites[{self.site_index}] (server_name {show(self.server_name)})"
        if self.app_index is not None:
            text += f", apps[{self.app_index}] (name {show(self.app_name)})"
        return text


class Errors(list):
    """Collects every problem so the user sees all of them in one run."""

    def add(self, where: Where, field: str, value: Any, allowed: str, problem: str = "invalid value",
            hint: str = "") -> None:
        """Record one problem in the fixed 'where: field: problem value[ hint]; allowed: ...' form."""
        hint = f" ({hint})" if hint else ""
        self.append(f"{where}: field '{field}': {problem} {show(value)}{hint}; allowed: {allowed}")


def show(value: Any) -> str:
    """Render a value for a message; plain types only, so Ansible's tagged types read naturally."""
    if value is MISSING:
        return "(missing)"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, Mapping):
        return repr({_plain(k): _plain(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return repr([_plain(v) for v in value])
    return repr(value)


def _plain(value: Any) -> Any:
    """Strip Ansible's str/int subclasses so repr() shows what the user wrote."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    return value


# --------------------------------------------------------------------------- scalar checks


def is_list(value: Any) -> bool:
    """YAML lists arrive as list (or a tagged list subclass); a str is never a list here."""
    return isinstance(value, (list, tuple))


def _to_int(value: Any) -> int | None:
    """Accept ints and digit strings (templating often yields strings); never bools."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str) and DIGITS_RE.match(value.strip()):
        return int(value.strip())
    return None


def _is_hostname(value: Any) -> bool:
    """RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens."""
    return isinstance(value, str) and len(value) <= 253 and bool(HOSTNAME_RE.match(value))


def _is_alias_hostname(value: Any) -> bool:
    """A ServerAlias may also be a wildcard such as *.example.com."""
    if isinstance(value, str) and value.startswith("*."):
        return _is_hostname(value[2:])
    return _is_hostname(value)


def has_dot_segment(path: str) -> bool:
    """'.' and '..' segments make a path mean something other than it reads."""
    return any(part in (".", "..") for part in path.split("/"))


def _is_safe_token(value: Any) -> bool:
    """Values rendered unquoted on one directive line must not contain blanks, quotes or controls."""
    return isinstance(value, str) and value != "" and not UNSAFE_CHARS_RE.search(value)


def _is_within(path: str, directory: str) -> bool:
    """True when path is directory itself or somewhere below it."""
    directory = directory.rstrip("/") + "/"
    return path == directory.rstrip("/") or path.startswith(directory)


def _suggest(word: str, choices: Iterable[str]) -> str:
    """'did you mean ...?' for the closest choice, since most unknown names are typos."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{close[0]}'?" if close else ""


def report_unknown_keys(errors: Errors, where: Where, raw: Mapping, known: tuple[str, ...], what: str,
                        prefix: str = "") -> None:
    """Unknown keys are usually misspellings (proceses) that would otherwise be ignored silently. prefix
    names the mapping inside a field (processes.worker.) whose keys these are."""
    for key in raw:
        if key not in known:
            errors.add(where, f"{prefix}{key}", key, "one of " + ", ".join(known), f"unknown {what} key",
                       _suggest(str(key), known))


# --------------------------------------------------------------------------- the table of fields


@dataclass(frozen=True)
class Context:
    """The caller's arguments, already normalized, shared by every site and app."""

    base_dir: str
    scripts_dir: str
    source_base: str
    default_source: str
    apps_dir: str = "/invalid/apps"


@dataclass(frozen=True)
class Given:
    """What a field's checker gets besides the value: where it is, the context, the fields done so far."""

    errors: Errors
    where: Where
    ctx: Context
    field: Field
    present: bool
    done: Mapping[str, Any]
    raw: Mapping[str, Any] = dataclass_field(default_factory=dict)  # the entry as given, for fields that read another

    def reject(self, value: Any, allowed: str, problem: str = "invalid value", hint: str = "") -> None:
        """Record a problem with this field, in the one message form."""
        self.errors.add(self.where, self.field.name, value, allowed, problem, hint)


Checker = Callable[[Any, Given], Any]


@dataclass(frozen=True)
class Field:
    """One field of a site or an app: the single description the filter, the spec and the docs share.

    The normalizer walks these rows; scripts/gen_schema_docs.py renders the same rows into the role's
    meta/argument_specs.yml and README table, and a test fails when those drift from here. A field may
    have one row per mode when its default differs (threads).
    """

    name: str
    level: str                       # "site" or "app"
    type: str                        # argument spec type, as permissive as the checker
    check: Checker                   # (value or default, Given) -> normalized value, records problems
    doc: str                         # one line for ansible-doc and the README
    default: Any = MISSING           # static default; MISSING when required or computed by the checker
    default_doc: str = ""            # what a computed default is, in words
    modes: tuple[str, ...] = MODES   # app fields: the modes it applies to
    required: bool = False
    elements: str | None = None      # type of list elements, for the spec


@dataclass(frozen=True)
class Derived:
    """A key the normalizer adds, computed from the fields: ready-to-render values for templates."""

    name: str
    level: str
    compute: Callable[[Mapping[str, Any], Context], Any]
    doc: str
    modes: tuple[str, ...] = MODES


def _integer_in(given: Given, field: str, value: Any, low: int, high: int) -> int | None:
    """value as an integer (or a string of digits) in low..high; None when it is not, the problem recorded
    under field: a field's own name, or a key inside it such as processes.worker.count."""
    number = _to_int(value)
    if number is None or not low <= number <= high:
        given.errors.add(given.where, field, value, f"an integer from {low} to {high}")
        return None
    return number


def _bounded(low: int, high: int) -> Checker:
    """A checker for an integer (or a string of digits) in low..high; None when invalid."""

    def check(value: Any, given: Given) -> int | None:
        return _integer_in(given, given.field.name, value, low, high)

    check.__doc__ = f"An integer from {low} to {high}."
    return check


def _optional(check: Checker) -> Checker:
    """None stays None (the role decides); anything else goes through check."""

    def optional(value: Any, given: Given) -> Any:
        return None if value is None else check(value, given)

    return optional


# --------------------------------------------------------------------------- site fields


def _server_name(value: Any, given: Given) -> str | None:
    """ServerName is what Apache matches requests on; without a valid one the vhost is useless."""
    if not _is_hostname(value):
        given.reject(value, "a host name: letters, digits, hyphens and dots, "
                     "1-253 characters, labels of 1-63 characters not starting or ending with '-'",
                     "required, got" if value is MISSING else "invalid value")
        return None
    return str(value)


def _server_aliases(value: Any, given: Given) -> list[str]:
    """Each ServerAlias must be a host name; wildcards ('*.example.com') are allowed."""
    allowed = "a list of host names, each optionally starting with '*.'"
    if not is_list(value):
        given.reject(value, allowed)
        return []
    good = []
    for alias in value:
        if _is_alias_hostname(alias):
            good.append(str(alias))
        else:
            given.reject(alias, allowed)
    return good


def _tls(value: Any, given: Given) -> dict[str, Any] | None:
    """HTTPS for the site: where the certificate comes from, its port, the redirect and HSTS.

    Certificate files are controller paths (the key may be ansible-vault encrypted) resolved like an
    app's source; their content is checked by the wsgi_tls_certificate_problems filter, which can read a
    vaulted key. The normalized value adds where the host keeps the certificate and key.
    """
    if value is None:
        return None
    allowed = (f"a mapping {{certificate: one of {', '.join(TLS_CERTIFICATES)}; with files: cert_file and "
               "key_file (chain_file optional), controller paths; port: 1-65535 (default 443); redirect: "
               f"true or false (default true); hsts: max-age in seconds, 0 for none (default {HSTS_DEFAULT})}}")
    if not isinstance(value, Mapping):
        given.reject(value, allowed)
        return None
    unknown = [key for key in value if key not in TLS_KEYS]
    for key in unknown:
        given.errors.add(given.where, f"tls.{key}", key, "one of " + ", ".join(TLS_KEYS), "unknown tls key",
                         _suggest(str(key), TLS_KEYS))
    kind = value.get("certificate", MISSING)
    ok = not unknown
    if kind not in TLS_CERTIFICATES:
        given.errors.add(given.where, "tls.certificate", kind,
                         "one of " + ", ".join(TLS_CERTIFICATES),
                         "required, got" if kind is MISSING else "invalid value")
        return None
    files: dict[str, str | None] = dict.fromkeys(TLS_FILES)
    for key in TLS_FILES:
        path = value.get(key)
        if kind != "files":
            if path is not None:
                given.errors.add(given.where, f"tls.{key}", path, "only with certificate: files",
                                 f"given with certificate {kind}:")
                ok = False
            continue
        if path is None and key == "chain_file":
            continue
        where_allowed = f"a file on the controller, absolute or relative to {given.ctx.source_base}"
        if not isinstance(path, str) or not path.strip():
            given.errors.add(given.where, f"tls.{key}", MISSING if path is None else path, where_allowed,
                             "required with certificate files, got" if path is None else "invalid value")
            ok = False
            continue
        resolved = os.path.normpath(os.path.join(given.ctx.source_base, path))
        if not os.path.isfile(resolved):
            given.errors.add(given.where, f"tls.{key}", path, where_allowed, f"file {resolved!r} not found for")
            ok = False
        files[key] = resolved
    port = _to_int(value.get("port", 443))
    if port is None or not 1 <= port <= 65535:
        given.errors.add(given.where, "tls.port", value.get("port"), "an integer from 1 to 65535")
        ok = False
    redirect = value.get("redirect", True)
    if not isinstance(redirect, bool):
        given.errors.add(given.where, "tls.redirect", redirect, "true or false")
        ok = False
    hsts = _to_int(value.get("hsts", HSTS_DEFAULT))
    if hsts is None or hsts < 0:
        given.errors.add(given.where, "tls.hsts", value.get("hsts"),
                         "a max-age in seconds: an integer of 0 (no Strict-Transport-Security) or more")
        ok = False
    if not ok:
        return None
    name = given.done.get("server_name") or "invalid"
    return {"certificate": kind, **files, "port": port, "redirect": redirect, "hsts": hsts,
            "certificate_path": f"{TLS_DIR}/{name}-{port}.crt", "key_path": f"{TLS_DIR}/{name}-{port}.key"}


def _log_level(value: Any, given: Given) -> str:
    """LogLevel takes a fixed set of words; anything else fails the config test."""
    if not isinstance(value, str) or value not in LOG_LEVELS:
        given.reject(value, "one of " + ", ".join(LOG_LEVELS))
        return given.field.default
    return str(value)


def _document_root(value: Any, given: Given) -> str:
    """The DocumentRoot is public: the Python source directory must never be inside it, nor it inside that."""
    ctx = given.ctx
    if value is MISSING:
        value = posixpath.join(ctx.base_dir, "documents")
    allowed = (f"an absolute path without '..' that neither is, lies under nor contains {ctx.scripts_dir} "
               f"or {ctx.apps_dir}")
    if not isinstance(value, str) or not value.startswith("/") or ".." in value.split("/"):
        given.reject(value, allowed)
        return str(value)
    path = posixpath.normpath(value)
    path = "/" + path.lstrip("/")
    if _is_within(path, ctx.scripts_dir) or _is_within(ctx.scripts_dir, path):
        given.reject(value, allowed, "overlaps the WSGI script directory:")
    elif _is_within(path, ctx.apps_dir) or _is_within(ctx.apps_dir, path):
        given.reject(value, allowed, "overlaps the directory of the project apps' releases:")
    return path


def _static_alias_ok(alias: Any) -> bool:
    """An Alias URL path: absolute, no dot segments, nothing that breaks the unquoted directive."""
    return (
        _is_safe_token(alias)
        and alias.startswith("/")
        and alias != "/"
        and "//" not in alias
        and not has_dot_segment(alias)
    )


def _static_aliases(value: Any, given: Given) -> list[str]:
    """URL paths served from the document root (robots.txt, images/); duplicates are a mistake."""
    allowed = ("a list of URL paths other than '/', starting with '/', without '//', '.' or '..' "
               "segments, whitespace or quotes; a trailing '/' means a directory")
    if not is_list(value):
        given.reject(value, allowed)
        return []
    good: list[str] = []
    for alias in value:
        if not _static_alias_ok(alias):
            given.reject(alias, allowed)
        elif str(alias) in good:
            given.reject(alias, "each URL path once", "duplicate")
        else:
            good.append(str(alias))
    return good


AppEntry = tuple[Where, dict[str, Any]]


def _apps(value: Any, given: Given) -> list[AppEntry]:
    """Every app of one site, each paired with its own position in the input for later messages."""
    if value is None:
        return []
    if not is_list(value):
        given.reject(value, "a list of app mappings")
        return []
    apps = []
    where = given.where
    for index, raw_app in enumerate(value):
        name = raw_app.get("name") if isinstance(raw_app, Mapping) else None
        app_where = Where(where.site_index, where.server_name, index, name)
        app = _app(given.errors, app_where, raw_app, given.ctx)
        if app is not None:
            apps.append((app_where, app))
    return apps


# --------------------------------------------------------------------------- app fields


def _app_name(value: Any, given: Given) -> str | None:
    """The name becomes the script file name, so it must be a safe, short file-name stem."""
    if not isinstance(value, str) or not APP_NAME_RE.match(value):
        given.reject(value, "1-64 characters of a-z, 0-9, '_' and '-'",
                     "required, got" if value is MISSING else "invalid value")
        return None
    return str(value)


def _mount(value: Any, given: Given) -> str | None:
    """WSGIScriptAlias URL: a trailing slash or dot segments would make the mount match oddly."""
    if not isinstance(value, str) or not MOUNT_RE.match(value) or has_dot_segment(value):
        given.reject(value, "'/' or a URL path like '/x' or '/x/y' without a trailing "
                     "'/', '.' or '..' segments; characters A-Z a-z 0-9 . _ ~ ! $ & ' ( ) * + , ; = : @ % -",
                     "required, got" if value is MISSING else "invalid value")
        return None
    return str(value)


def _mode(value: Any, given: Given) -> str | None:
    """The mode decides which other fields apply, so it is required and checked first."""
    if not isinstance(value, str) or value not in MODES:
        given.reject(value, "one of " + ", ".join(MODES),
                     "required, got" if value is MISSING else "invalid value")
        return None
    return str(value)


def _source(value: Any, given: Given) -> str:
    """The script is copied from the controller, so it has to exist there now, not fail mid-play."""
    ctx = given.ctx
    if given.done.get("project") is not None:
        if given.present:
            given.reject(value, "either source (one WSGI script) or project (a directory), not both",
                         "given together with project:")
        return None
    if value is MISSING or value is None:
        path = ctx.default_source
    elif not isinstance(value, str) or not value.strip():
        given.reject(value, "a path to a file on the controller, "
                     f"absolute or relative to {ctx.source_base}")
        return str(value)
    else:
        path = os.path.normpath(os.path.join(ctx.source_base, str(value)))
    if not os.path.isfile(path) and path == ctx.default_source and value in (MISSING, None):
        given.reject(path, "an existing file on the controller: set source, or restore "
                     "the role's hello-world app", "no source given and the default script is missing:")
    elif not os.path.isfile(path):
        given.reject(value, "an existing file on the controller", f"file {path!r} not found for")
    return path


def _callable(value: Any, given: Given) -> str:
    """WSGICallableObject names a module attribute, so it must be a Python identifier."""
    if given.present and given.done.get("project") is not None:
        given.reject(value, "the callable in entry ('module:callable') for a project app",
                     "does not apply to a project app:")
        return given.field.default
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
        given.reject(value, "a Python identifier such as 'application'")
        return given.field.default
    return str(value)


def _process_group(value: Any, given: Given) -> str | None:
    """WSGIDaemonProcess name; defaults to the app name, which is unique already."""
    if value is MISSING:
        value = given.done["name"]
    if not isinstance(value, str) or not PROCESS_GROUP_RE.match(value):
        if given.present:
            given.reject(value, "letters, digits, '.', '_' and '-'")
        return None
    return str(value)


def _display_name(value: Any, given: Given) -> str:
    """Rendered unquoted as display-name=...; blanks or quotes would split the directive."""
    if not _is_safe_token(value):
        given.reject(value, "a non-empty string without whitespace, control characters or quotes, e.g. '%{GROUP}'")
        return given.field.default
    return str(value)


def _user(value: Any, given: Given) -> str:
    """The daemon's own unprivileged account; mod_wsgi refuses root, and so do we, earlier.

    A project app runs as a user of its own by default (its state directory and secrets are that user's
    alone), named after the app.
    """
    if not given.present and given.done.get("project") is not None:
        return project_user(given.done["name"] or "")
    if not isinstance(value, str) or not USER_RE.match(value) or value == "root":
        given.reject(value, "a user name matching ^[a-z_][a-z0-9_-]{0,31}$ other than 'root'")
        return given.field.default
    return str(value)


def _listen(value: Any, given: Given) -> str | None:
    """Where a proxied app server listens: a TCP address or an absolute unix socket path."""
    if value is None:
        return None
    if not _is_listen_address(value):
        given.reject(value, "'HOST:PORT', '[IPv6]:PORT' or 'unix:/absolute/path' "
                     "(port 1-65535, no whitespace or quotes)")
        return None
    return str(value)


def _is_listen_address(value: Any) -> bool:
    """Split the three accepted listen forms and check each part."""
    if not _is_safe_token(value):
        return False
    if value.startswith(UNIX_PREFIX):
        path = value[len(UNIX_PREFIX):]
        return path.startswith("/") and len(path) > 1 and not has_dot_segment(path)
    host, sep, port = value.rpartition(":")
    number = _to_int(port)
    if not sep or number is None or not 1 <= number <= 65535:
        return False
    if host.startswith("[") and host.endswith("]"):
        return _is_ipv6(host[1:-1])
    return _is_hostname(host)


def _is_ipv6(text: str) -> bool:
    """True for a literal IPv6 address (the part between the brackets)."""
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- project apps


def project_user(name: str) -> str:
    """The own account of a project app: wsgi-<name>, shortened with a digest to fit 32 characters."""
    user = f"wsgi-{name}"
    if len(user) <= 32:
        return user
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"wsgi-{name[:18]}-{digest}"


def _project_only(check: Checker, empty: Any = MISSING) -> Checker:
    """A field of project apps: given for a single-script app it would be ignored, so it is an error.

    Without a (valid) project the field is its default, or `empty` when the normalized value has another
    type than the input (secrets: a mapping given, its names kept).
    """

    def project_only(value: Any, given: Given) -> Any:
        project = given.done.get("project")
        if project is None or project is BAD_PROJECT:
            if given.present and project is None:
                given.reject(value, "only for an app with project (a project directory)",
                             "field does not apply without project:")
            if empty is not MISSING:
                return empty
            return given.field.default if given.field.default is not MISSING else None
        return check(value, given)

    project_only.__doc__ = check.__doc__
    return project_only


def _project(value: Any, given: Given) -> str | None:
    """The project is copied from the controller, so it has to be a directory there now."""
    if value is None:
        return None
    ctx = given.ctx
    allowed = f"a directory on the controller, absolute or relative to {ctx.source_base}"
    if not isinstance(value, str) or not value.strip():
        given.reject(value, allowed)
        return BAD_PROJECT
    path = os.path.normpath(os.path.join(ctx.source_base, str(value)))
    if not os.path.isdir(path):
        given.reject(value, allowed, f"directory {path!r} not found for")
        return BAD_PROJECT
    return path


def _entry(value: Any, given: Given) -> dict[str, str] | None:
    """What the host imports: 'module:callable' from the project root, or a .wsgi/.py file in it."""
    allowed = ("'module:callable' (dotted module importable from the project root, e.g. 'shop.wsgi:application') "
               "or a path to a .wsgi or .py file inside the project (callable 'application')")
    if value is MISSING or value is None:
        given.reject(MISSING, allowed, "required with project, got")
        return None
    if not isinstance(value, str) or not _is_safe_token(value):
        given.reject(value, allowed)
        return None
    module, sep, name = value.partition(":")
    if sep:
        if not ENTRY_MODULE_RE.match(module) or not name.isidentifier() or keyword.iskeyword(name):
            given.reject(value, allowed)
            return None
        return {"module": module, "callable": name, "file": ""}
    relative = _inside_project(value)
    if relative is None or not relative.endswith((".wsgi", ".py")):
        given.reject(value, allowed)
        return None
    if not os.path.isfile(os.path.join(given.done["project"], relative)):
        given.reject(value, allowed, f"file not found in the project {given.done['project']!r}:")
        return None
    return {"module": "", "callable": "application", "file": relative}


def _inside_project(value: str) -> str | None:
    """A relative path that stays inside the project (or release) directory, normalized; None if not."""
    if value.startswith("/") or not value.strip():
        return None
    path = posixpath.normpath(value)
    if path == "." or path == ".." or path.startswith("../"):
        return None
    return path


def _requirements(value: Any, given: Given) -> str | None:
    """The requirements file inside the project; by default requirements.txt when there is one."""
    project = given.done["project"]
    if value is None:
        return "requirements.txt" if os.path.isfile(os.path.join(project, "requirements.txt")) else None
    relative = _inside_project(value) if isinstance(value, str) else None
    if relative is None or not os.path.isfile(os.path.join(project, relative)):
        given.reject(value, f"a file inside the project {project!r}, relative to it")
        return None
    return relative


def _env_names(value: Any, given: Given, allowed_value: str,
               value_ok: Callable[[Any], bool]) -> dict[str, str]:
    """A mapping of environment variable names to values; names must be valid, values plain."""
    if not isinstance(value, Mapping):
        given.reject(value, f"a mapping of environment variable name to {allowed_value}")
        return {}
    good: dict[str, str] = {}
    for name, item in value.items():
        field = f"{given.field.name}.{name}"
        if not isinstance(name, str) or not ENV_NAME_RE.match(name):
            given.errors.add(given.where, field, name, "a name of letters, digits and '_', not starting with a digit",
                             "invalid environment variable name")
        elif name in RESERVED_ENV:
            given.errors.add(given.where, field, name, "a name other than " + ", ".join(sorted(RESERVED_ENV)),
                             "is set by the roles:")
        elif not value_ok(item):
            shown = "(hidden)" if given.field.name == "secrets" else item
            given.errors.add(given.where, field, shown, allowed_value)
        else:
            good[str(name)] = str(item)
    return good


def _env(value: Any, given: Given) -> dict[str, str]:
    """The app's os.environ additions; numbers are written as text, anything else is a mistake."""
    return _env_names(value, given, "a string or number without NUL characters",
                      lambda v: not isinstance(v, bool) and isinstance(v, (str, int, float)) and "\0" not in str(v))


def _secrets(value: Any, given: Given) -> list[str]:
    """Like env, for values never shown; a secret must be a string (ansible-vault gives strings).

    The normalized app keeps only the names: the normalized sites are looped over and shown (an item of a
    loop is in the output with -v), so the values are handed to the roles apart, by wsgi_secret_values.
    """
    secrets = _env_names(value, given, "a string (never shown) without NUL characters",
                         lambda v: isinstance(v, str) and "\0" not in v)
    for name in secrets:
        if name in given.done.get("env", {}):
            given.errors.add(given.where, f"secrets.{name}", name, "each name in env or in secrets, not both",
                             "is also in env:")
    return sorted(secrets)


def _password_ok(given: Given, field: str, value: Mapping[str, Any]) -> bool:
    """Whether the password a field's mapping may give (database, redis) is absent or a usable string; the
    problem recorded without the value."""
    if "password" in value and not is_password(value["password"]):
        given.errors.add(given.where, f"{field}.password", "(hidden)", "a non-empty string without NUL characters")
        return False
    return True


def _database(value: Any, given: Given) -> dict[str, Any] | None:
    """A database and an owner role of the same name on the `databases` host, for this app alone.

    The password is the user's (ansible-vault) or, absent, generated on the database host; the normalized
    app keeps only whether it was given, never the value. The app gets DATABASE_ENV as secrets, so those
    names cannot also be in its env or secrets.
    """
    allowed = ("a mapping {name: a lower-case identifier (a-z, 0-9, '_', not starting with a digit, at most "
               "63 characters, not postgres, template0, template1 or pg_...), password: optional, a string "
               "(ansible-vault it; generated on the database host when absent)}")
    if value is None:
        return None
    shown = ({k: "(hidden)" if k == "password" else v for k, v in value.items()}
             if isinstance(value, Mapping) else value)
    if not isinstance(value, Mapping) or "name" not in value or set(value) - {"name", "password"}:
        given.reject(shown, allowed)
        return None
    name = value["name"]
    if not is_database_name(name):
        given.errors.add(given.where, "database.name", name, allowed)
        return None
    if not _password_ok(given, "database", value):
        return None
    for other in ("env", "secrets"):
        for clash in sorted(set(given.done.get(other) or ()) & set(DATABASE_ENV)):
            given.errors.add(given.where, f"{other}.{clash}", clash, "a name other than " + ", ".join(DATABASE_ENV),
                             "is set by database:")
    return {"name": str(name), "password_given": "password" in value}


REDIS_KEYS = ("maxmemory", "policy", "password", "port")
# Each app's Redis listens on a port of its own on the redis host: by default one from its name (the same on
# every run and host, whatever other apps come and go), in a range clear of Redis' 6379 and of the ephemeral
# ports; the fleet's validation names two apps that land on one port, for one of them to set `port`.
REDIS_PORT_BASE, REDIS_PORT_SPAN = 16380, 1000


def redis_default_port(app_name: str) -> int:
    """The port of an app's Redis when it sets none: a function of its name alone."""
    return REDIS_PORT_BASE + int(hashlib.sha256(app_name.encode()).hexdigest(), 16) % REDIS_PORT_SPAN


def _redis(value: Any, given: Given) -> dict[str, Any] | None:
    """A Redis instance of the app's own on the `redis` host (queues, caches), reached through REDIS_URL.

    Like database, the password is the user's (ansible-vault) or generated on the redis host, and the
    normalized app keeps only whether it was given.
    """
    allowed = (f"a mapping {{maxmemory: a size such as 256mb (b, kb, mb, gb; 128mb), policy: one of "
               f"{', '.join(REDIS_POLICIES)} (noeviction), password: optional, a string (ansible-vault it; "
               f"generated on the redis host when absent), port: 1024-65535 (one from the app's name)}}")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        given.reject(value, allowed)
        return None
    report_unknown_keys(given.errors, given.where, value, REDIS_KEYS, "redis setting", "redis.")
    memory = str(value.get("maxmemory", "128mb"))
    if isinstance(value.get("maxmemory"), bool) or not REDIS_MEMORY_RE.match(memory):
        given.errors.add(given.where, "redis.maxmemory", value.get("maxmemory"),
                         "a size such as 256mb: digits, then b, kb, mb or gb (Redis' 0, no limit, is not allowed)")
        memory = ""
    policy = value.get("policy", "noeviction")
    if policy not in REDIS_POLICIES:
        given.errors.add(given.where, "redis.policy", policy, "one of " + ", ".join(REDIS_POLICIES))
        policy = None
    password_ok = _password_ok(given, "redis", value)
    name = given.done.get("name")
    port = _integer_in(given, "redis.port", value["port"], 1024, 65535) if "port" in value else (
        redis_default_port(name) if isinstance(name, str) else None)
    for other in ("env", "secrets"):
        if REDIS_ENV in (given.done.get(other) or ()):
            given.errors.add(given.where, f"{other}.{REDIS_ENV}", REDIS_ENV, f"a name other than {REDIS_ENV}",
                             "is set by redis:")
    if not memory or policy is None or port is None or not password_ok:
        return None
    return {"maxmemory": memory.lower(), "policy": policy, "port": port, "password_given": "password" in value}


def _static(value: Any, given: Given) -> list[dict[str, str]]:
    """Directories of the release Apache serves itself: URL prefix (ending in '/') to release path."""
    allowed = ("a list of {url, path}: url a URL path starting and ending with '/' (no '.' or '..' segments, "
               "whitespace or quotes), path a directory inside the release")
    if not is_list(value):
        given.reject(value, allowed)
        return []
    good: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) - {"url", "path"}:
            given.reject(item, allowed)
            continue
        url, path = item.get("url"), item.get("path")
        relative = _inside_project(path) if isinstance(path, str) and _is_safe_token(path) else None
        if not (_static_alias_ok(url) and url.endswith("/")):
            given.errors.add(given.where, "static.url", url, allowed)
        elif relative is None:
            given.errors.add(given.where, "static.path", path,
                             "a relative path of a directory inside the release (no '..' escaping it)")
        elif any(entry["url"] == url for entry in good):
            given.errors.add(given.where, "static.url", url, "each url once", "duplicate")
        else:
            good.append({"url": str(url), "path": relative})
    return good


def _commands(value: Any, given: Given) -> list[str]:
    """Shell command lines run in the release with its venv active; one string each."""
    if not is_list(value) or not all(isinstance(c, str) and c.strip() and "\0" not in c for c in value):
        given.reject(value, "a list of non-empty command lines (strings), run by /bin/sh in the release")
        return []
    return [str(command) for command in value]


def _processes(value: Any, given: Given) -> dict[str, dict[str, Any]]:
    """A project app's long-running processes besides the web one (a queue's workers), by type.

    In daemon mode an integer here is the older spelling of wsgi_processes (mod_wsgi's process count), which
    that field reads; it is no process type.
    """
    allowed = ("a mapping of process types, name ([a-z][a-z0-9-]*, at most 32) to {command: a command line, "
               "count: 1-16 (1), stop_timeout: seconds 1-3600 (30), group: an inventory group (none: the app's web "
               "servers)}; in daemon mode also an integer 1-256, the older spelling of wsgi_processes")
    if value is None or value == {}:
        return {}
    if _to_int(value) is not None:
        if given.done.get("mode") != "daemon":
            given.reject(value, allowed, "an integer only in daemon mode (mod_wsgi's processes):")
        return {}
    if not isinstance(value, Mapping):
        given.reject(value, allowed)
        return {}
    project = given.done.get("project")
    if project is None:
        given.reject(value, "only for an app with project (a project directory)", "field does not apply without project:")
        return {}
    good: dict[str, dict[str, Any]] = {}
    for name, spec in value.items():
        where = f"processes.{name}"
        if not isinstance(name, str) or not PROCESS_NAME_RE.match(name):
            given.errors.add(given.where, "processes", name, "a name of [a-z][a-z0-9-]*, at most 32 characters",
                             "invalid process name")
            continue
        if not isinstance(spec, Mapping):
            given.errors.add(given.where, where, spec, allowed)
            continue
        report_unknown_keys(given.errors, given.where, spec, PROCESS_KEYS, "process", f"{where}.")
        command, argv = spec.get("command"), command_words(spec.get("command"))
        if not argv:
            given.errors.add(given.where, f"{where}.command", command, COMMAND_ALLOWED)
            command = None
        numbers = {key: _integer_in(given, f"{where}.{key}", spec.get(key, default), low, high)
                   for key, low, high, default in (("count", 1, 16, 1), ("stop_timeout", 1, 3600, 30))}
        group = spec.get("group")
        if group is not None and not (isinstance(group, str) and GROUP_NAME_RE.match(group)):
            given.errors.add(given.where, f"{where}.group", group,
                             "the name of an inventory group ([A-Za-z_][A-Za-z0-9_]*) whose hosts run it, or none "
                             "for the app's web servers")
            continue
        if command is not None and None not in numbers.values():
            good[name] = {"command": command, "argv": argv, **numbers, "group": group}
    return good


def calendar_problem(spec: str) -> str | None:
    """What systemd says of an OnCalendar= specification, where the controller has systemd-analyze (None
    when it accepts it, or when it cannot be asked here: the host's systemd still checks it)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return None
    done = subprocess.run([analyze, "calendar", spec], capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else (done.stderr.strip() or "rejected by systemd-analyze calendar")


def _backup_state(value: Any, given: Given) -> bool:
    """Whether the app's state directory goes to the backups host: a YAML boolean, not a string, since
    'false' in quotes would back it up."""
    if not isinstance(value, bool):
        given.reject(value, "true or false (a YAML boolean)")
        return False
    return value


def _schedule(value: Any, given: Given) -> list[dict[str, Any]]:
    """A project app's scheduled jobs: each runs once per fleet at each time of its calendar, which the app's
    database decides (so it needs `database`)."""
    allowed = ("a list of jobs {name: [a-z][a-z0-9-]* (at most 32), command: a command line, on_calendar: a "
               "systemd OnCalendar specification, timeout: seconds 1-86400 (3600)}")
    if value is None or value == []:
        return []
    if not is_list(value):
        given.reject(value, allowed)
        return []
    if given.done.get("database") is None:
        given.reject("(a schedule)", "database: {name: ...} too: which host runs a scheduled time is decided in "
                     "the app's database", "a schedule needs a database:")
        return []
    good: list[dict[str, Any]] = []
    for index, job in enumerate(value):
        where = f"schedule[{index}]"
        if not isinstance(job, Mapping):
            given.errors.add(given.where, where, job, allowed)
            continue
        report_unknown_keys(given.errors, given.where, job, JOB_KEYS, "job", f"{where}.")
        name, argv = job.get("name"), command_words(job.get("command"))
        if not isinstance(name, str) or not PROCESS_NAME_RE.match(name):
            given.errors.add(given.where, f"{where}.name", name, "a name of [a-z][a-z0-9-]*, at most 32 characters")
            name = None
        elif any(other["name"] == name for other in good):
            given.errors.add(given.where, f"{where}.name", name, "each job name once in an app", "duplicate")
            name = None
        if argv is None:
            given.errors.add(given.where, f"{where}.command", job.get("command"), COMMAND_ALLOWED)
        calendar = job.get("on_calendar")
        problem = (calendar_problem(calendar) if isinstance(calendar, str) and calendar.strip()
                   and "\n" not in calendar else "not a one-line string")
        if problem:
            given.errors.add(given.where, f"{where}.on_calendar", calendar,
                             "a systemd OnCalendar specification such as '*-*-* 03:00:00' or 'hourly'",
                             f"invalid ({problem}):")
        timeout = _integer_in(given, f"{where}.timeout", job.get("timeout", 3600), 1, 86400)
        if name and argv and not problem and timeout is not None:
            good.append({"name": name, "command": job["command"], "argv": argv, "on_calendar": calendar,
                         "timeout": timeout})
    return good


def _wsgi_processes(value: Any, given: Given) -> int | None:
    """mod_wsgi's daemon processes; `processes: <integer>` is its older spelling, still read here (and a
    problem with it named as the user wrote it)."""
    older = given.raw.get("processes")
    if _to_int(older) is None:
        return _integer_in(given, given.field.name, value, 1, 256)
    if given.present:
        given.reject(value, "wsgi_processes or an integer processes, not both", "also given as processes:")
        return None
    return _integer_in(given, "processes", older, 1, 256)


# --------------------------------------------------------------------------- daemon options


def _daemon_options(value: Any, given: Given) -> dict[str, str]:
    """Extra WSGIDaemonProcess options: documented names only, values safe to render unquoted."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        given.reject(value, "a mapping of WSGIDaemonProcess option to value")
        return {}
    options: dict[str, str] = {}
    for key, option_value in value.items():
        text = _daemon_option(given.errors, given.where, key, option_value)
        if text is not None:
            options[str(key)] = text
    if "script-user" in options and "script-group" in options:
        given.reject(value, "only one of script-user and script-group (mod_wsgi refuses both)",
                     "conflicting options in")
    return dict(sorted(options.items()))


def _daemon_option(errors: Errors, where: Where, key: Any, value: Any) -> str | None:
    """Check one option name and its value; return the value as the string to render."""
    field = f"daemon_options.{key}"
    if not _daemon_option_name_ok(errors, where, key):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not _is_safe_token(str(value)):
        errors.add(where, field, value, "a string or integer without whitespace, quotes or newlines")
        return None
    text = str(value)
    allowed = _option_value_rule(str(key), text)
    if allowed is not None:
        errors.add(where, field, value, allowed)
        return None
    return text


def _daemon_option_name_ok(errors: Errors, where: Where, key: Any) -> bool:
    """Reject misspelled, undocumented and role-managed option names with a helpful hint."""
    name = str(key)
    field = f"daemon_options.{name}"
    if name in OPTION_FIELDS:
        errors.add(where, field, key, f"the app field '{OPTION_FIELDS[name]}' instead",
                   "option has its own field:")
        return False
    if name == "group":
        errors.add(where, field, key, "nothing: the role sets group to the scripts group so the "
                   "daemon can read its script", "option is managed by the role:")
        return False
    if name not in DAEMON_OPTIONS:
        documented = [o for o in DAEMON_OPTIONS if o not in OPTION_FIELDS and o != "group"]
        errors.add(where, field, key, "one of " + ", ".join(documented), "unknown WSGIDaemonProcess option",
                   _suggest(name, documented))
        return False
    return True


def _option_value_rule(name: str, text: str) -> str | None:
    """Value rules mod_wsgi itself enforces (or silently misreads, like atoi('abc') == 0)."""
    if name in NON_NEGATIVE_INT_OPTIONS and not DIGITS_RE.match(text):
        return "a non-negative integer"
    if name == "cpu-priority" and not (re.match(r"^-?[0-9]+$", text) and -20 <= int(text) <= 20):
        return "an integer from -20 to 20"
    if name == "umask" and not re.match(r"^0?[0-7]{1,3}$", text):
        return "an octal umask such as 0022 or 0007"
    if name == "server-metrics" and text.lower() not in ("on", "off"):
        return "On or Off"
    if name in ABSOLUTE_PATH_OPTIONS and not text.startswith("/"):
        return "an absolute path"
    return None


# --------------------------------------------------------------------------- the table


DAEMON = ("daemon",)
PROXY = ("proxy",)

FIELDS: tuple[Field, ...] = (
    Field("server_name", "site", "str", _server_name, required=True,
          doc="Host name of the VirtualHost (ServerName)."),
    Field("server_aliases", "site", "list", _server_aliases, default=[], elements="str",
          doc="Other host names of the VirtualHost (ServerAlias); '*.example.com' wildcards allowed."),
    Field("port", "site", "raw", _bounded(1, 65535), default=80,
          doc="TCP port of the VirtualHost, 1-65535 (an integer or a string of digits)."),
    Field("tls", "site", "dict", _tls, default=None, default_doc="none: HTTP only",
          doc="HTTPS for the site: {certificate: files or self_signed, cert_file, key_file, chain_file "
              f"(files), port (443), redirect (true: port 80 answers 308), hsts ({HSTS_DEFAULT} s; 0 off)}}."),
    Field("log_level", "site", "str", _log_level, default="info",
          doc="LogLevel of the VirtualHost: " + ", ".join(LOG_LEVELS) + "."),
    Field("document_root", "site", "str", _document_root, default_doc="<wsgi_base_dir>/documents",
          doc="Absolute path of the static files (DocumentRoot), apart from wsgi-scripts/."),
    Field("static_aliases", "site", "list", _static_aliases, default=[], elements="str",
          doc="URL paths served from the document root even under an app ('/robots.txt', '/images/')."),
    Field("apps", "site", "raw", _apps, default=[],
          doc="The apps of the site, a list of mappings (fields below)."),
    Field("name", "app", "str", _app_name, required=True,
          doc="Unique name, 1-64 of a-z 0-9 _ -; installed as wsgi-scripts/<name>.wsgi."),
    Field("mount", "app", "str", _mount, required=True,
          doc="URL path of the app: '/' or '/x' or '/x/y', no trailing '/'."),
    Field("mode", "app", "str", _mode, required=True,
          doc="How the app runs: " + ", ".join(MODES) + "."),
    Field("project", "app", "str", _project, default=None, default_doc="none: a single script (source)",
          doc="A project directory on the controller (instead of source): deployed as releases with a venv."),
    Field("source", "app", "str", _source, default_doc="the bundled hello-world app (without project)",
          doc="The WSGI script on the controller, absolute or relative to wsgi_source_dir."),
    Field("callable", "app", "str", _callable, default="application",
          doc="Name of the WSGI callable in the script (WSGICallableObject); not with project."),
    Field("entry", "app", "str", _project_only(_entry), default=None, default_doc="required with project",
          doc="Project apps: 'module:callable' importable from the project root, or a .wsgi/.py file in it."),
    Field("requirements", "app", "str", _project_only(_requirements), default=None,
          default_doc="requirements.txt when the project has one",
          doc="Project apps: the requirements file inside the project, installed offline into the venv."),
    Field("env", "app", "dict", _project_only(_env), default={},
          doc="Project apps: variables set in the app's os.environ before it is imported, in every mode."),
    Field("secrets", "app", "dict", _project_only(_secrets, empty=[]), default={},
          doc="Project apps: like env, for values never shown (strings; ansible-vault them)."),
    Field("database", "app", "dict", _project_only(_database), default=None,
          default_doc="none: no database",
          doc="Project apps: {name: shop} a PostgreSQL database and owner role on the databases host; "
              "DATABASE_URL and PG* as secrets."),
    Field("redis", "app", "dict", _project_only(_redis), default=None, default_doc="none: no Redis",
          doc="Project apps: {maxmemory: 256mb, policy: noeviction} a Redis of the app's own on the redis host "
              "(persistent, TLS, its own password); REDIS_URL as a secret."),
    Field("static", "app", "list", _project_only(_static), default=[], elements="dict",
          doc="Project apps: [{url: /static/, path: staticfiles}], directories of the release Apache serves."),
    Field("build", "app", "list", _project_only(_commands), default=[], elements="str",
          doc="Project apps: commands run on each host in a new release, venv active, before it goes live."),
    Field("migrate", "app", "list", _project_only(_commands), default=[], elements="str",
          doc="Project apps: commands run once per new release, on one host, before any host switches."),
    Field("processes", "app", "raw", _processes, default={},
          doc="Project apps: long-running processes besides the web one, {worker: {command, count (1), "
              "stop_timeout (30), group (none)}}, under systemd on the app's web servers, or on the hosts of "
              "the inventory group `group`; in daemon mode an integer is the older spelling of wsgi_processes."),
    Field("schedule", "app", "list", _project_only(_schedule, empty=[]), default=[], elements="dict",
          doc="Project apps with a database: jobs [{name, command, on_calendar (systemd OnCalendar), timeout "
              "(3600)}], each run once per fleet at each scheduled time, on one of the app's hosts."),
    Field("backup_state", "app", "bool", _project_only(_backup_state), default=False,
          doc="Project apps: true backs up the app's state directory (STATE_DIRECTORY: uploads, files) to the "
              "`backups` host on a timer, encrypted and deduplicated (restic); playbooks/restore_state.yml "
              "brings it back."),
    Field("process_group", "app", "str", _process_group, modes=DAEMON, default_doc="the app name",
          doc="WSGIDaemonProcess name; apps of one site may share it when their daemon settings agree."),
    Field("wsgi_processes", "app", "raw", _wsgi_processes, modes=DAEMON, default=2,
          doc="mod_wsgi daemon processes, 1-256 (formerly processes: an integer)."),
    Field("threads", "app", "raw", _bounded(1, 1000), modes=DAEMON, default=15,
          doc="Threads per daemon process, 1-1000."),
    Field("display_name", "app", "str", _display_name, modes=DAEMON, default="%{GROUP}",
          doc="display-name of the daemon processes in ps; no blanks or quotes."),
    Field("daemon_options", "app", "dict", _daemon_options, modes=DAEMON, default={},
          doc="Any other documented WSGIDaemonProcess option, name to value (maximum-requests: 1000)."),
    Field("user", "app", "str", _user, modes=DAEMON, default="wsgi",
          default_doc="wsgi; wsgi-<name> for a project app",
          doc="Unprivileged user of the daemon processes (not root)."),
    Field("workers", "app", "raw", _optional(_bounded(1, 256)), modes=PROXY, default=None,
          default_doc="the host's CPUs, at least 2 (headrace_default_workers)",
          doc="headrace worker processes, 1-256."),
    Field("threads", "app", "raw", _bounded(1, 1000), modes=PROXY, default=1,
          doc="Application threads per headrace worker, 1-1000."),
    Field("listen", "app", "str", _listen, modes=PROXY, default=None,
          default_doc="the unix socket <wsgi_proxy_socket_dir>/<name>.sock",
          doc="Address of the app's headrace: 'HOST:PORT', '[IPv6]:PORT' or 'unix:/absolute/path'."),
)


def _listen_stream(app: Mapping[str, Any], ctx: Context) -> str | None:
    """systemd's ListenStream= takes a socket path or HOST:PORT, so the 'unix:' prefix goes."""
    listen = app["listen"]
    if listen is None:
        return None
    return listen.removeprefix(UNIX_PREFIX)


def _listen_tcp(app: Mapping[str, Any], ctx: Context) -> bool:
    """A TCP listener is reached over the network, so whom to trust depends on it."""
    return app["listen"] is not None and not app["listen"].startswith(UNIX_PREFIX)


def _project_paths(app: Mapping[str, Any], ctx: Context) -> dict[str, Any] | None:
    """Where a project app lives on the host, and who it runs as; None for a single-script app.

    releases/<id>/ holds each release (its .venv a link into venvs/), current is the live one, previous the
    one before; the state directory persists across releases. Embedded apps run inside Apache, as its user.
    """
    if app["project"] is None:
        return None
    app_dir = f"{ctx.apps_dir}/{app['name']}"
    current = f"{app_dir}/current"
    user = None
    if app["mode"] == "daemon":
        user = app["user"]
    elif app["mode"] == "proxy":
        user = project_user(app["name"] or "")
    return {
        "app_dir": app_dir,
        "current": current,
        "state_dir": f"{STATE_BASE}/{app['name']}",
        "state_name": f"{posixpath.basename(STATE_BASE)}/{app['name']}",
        "user": user,
        "static": [{**entry, "dir": f"{current}/{entry['path']}/"} for entry in app["static"]],
    }


DERIVED: tuple[Derived, ...] = (
    Derived("script", "app", lambda app, ctx: f"{ctx.scripts_dir}/{app['name']}.wsgi",
            "Path of the installed script on the host: <wsgi_base_dir>/wsgi-scripts/<name>.wsgi "
            "(for a project app, the generated loader of its live release)."),
    Derived("release", "app", _project_paths,
            "Project apps: app_dir, current, state_dir, state_name, user (None: Apache's) and static with "
            "each dir on the host; None for a single-script app."),
    Derived("listen_stream", "app", _listen_stream, modes=PROXY,
            doc="listen as systemd's ListenStream= takes it (the socket path without 'unix:'); None if unset."),
    Derived("listen_tcp", "app", _listen_tcp, modes=PROXY,
            doc="True when listen is a TCP address, False for a unix socket (the default or 'unix:')."),
    Derived("config_name", "site", lambda site, ctx: f"{(site['server_name'] or '').lower()}-{site['port']}",
            "<server_name in lower case>-<port>: the stem of the site's log files."),
)


def fields(level: str, mode: str | None = None) -> tuple[Field, ...]:
    """The rows of one level; for apps with a mode, only the rows that apply to that mode."""
    return tuple(f for f in FIELDS if f.level == level and (mode is None or mode in f.modes))


def _names(rows: Iterable[Field]) -> tuple[str, ...]:
    """Field names in table order, each once (a field may have a row per mode)."""
    return tuple(dict.fromkeys(f.name for f in rows))


SITE_KEYS = _names(fields("site"))
APP_KEYS = _names(fields("app"))
COMMON_APP_KEYS = _names(f for f in fields("app") if f.modes == MODES)
MODE_KEYS: dict[str, tuple[str, ...]] = {
    mode: _names(f for f in fields("app", mode) if f.modes != MODES) for mode in MODES
}


# --------------------------------------------------------------------------- normalization


def normalize_fields(errors: Errors, where: Where, raw: Mapping, ctx: Context, rows: Iterable[Field],
               done: dict[str, Any]) -> dict[str, Any]:
    """Check each row's value (or its default) in table order, adding the result to done."""
    for field in rows:
        given = Given(errors, where, ctx, field, field.name in raw, done, raw)
        done[field.name] = field.check(raw.get(field.name, field.default), given)
    return done


def derive(values: dict[str, Any], ctx: Context, level: str, mode: str | None) -> dict[str, Any]:
    """Add the derived keys of this level (and mode) to the normalized values."""
    for derived in DERIVED:
        if derived.level == level and (derived.modes == MODES or mode in derived.modes):
            values[derived.name] = derived.compute(values, ctx)
    return values


def _wrong_mode_fields(errors: Errors, where: Where, raw: Mapping, mode: str) -> None:
    """A field of another mode would be silently ignored; that is nearly always a mistake."""
    own = _names(fields("app", mode))
    for key in APP_KEYS:
        if key in raw and key not in own:
            owners = [m for m in MODES if key in MODE_KEYS[m]]
            errors.add(where, key, raw[key], f"only in mode {' or '.join(owners)}",
                       f"field does not apply to mode '{mode}':")


def _app(errors: Errors, where: Where, raw: Any, ctx: Context) -> dict[str, Any] | None:
    """Validate one app and return it with every default filled in."""
    if not isinstance(raw, Mapping):
        errors.add(where, "apps", raw, "a mapping with name, mount, mode, ...", "app is not a mapping:")
        return None
    report_unknown_keys(errors, where, raw, APP_KEYS, "app")
    app = normalize_fields(errors, where, raw, ctx, (f for f in fields("app") if f.modes == MODES), {})
    mode = app["mode"]
    if mode is not None:
        _wrong_mode_fields(errors, where, raw, mode)
        normalize_fields(errors, where, raw, ctx, (f for f in fields("app", mode) if f.modes != MODES), app)
    return derive(app, ctx, "app", mode)
