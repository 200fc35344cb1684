"""Options: one table drives the command line, the TOML config file and validation.

The command line overrides the config file.  Every error becomes a :class:`ConfigError`
with one clear line, raised before any socket is bound.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields
from typing import Any

from headrace import __version__


class ConfigError(Exception):
    """An invalid option or config file; the message is a single line for the user."""


@dataclass
class Config:
    app: str | None = None
    bind: list[str] = field(default_factory=list)
    workers: int = 2
    threads: int = 1
    timeout: float = 30.0
    graceful_timeout: float = 30.0
    keep_alive: float = 5.0
    max_requests: int = 0
    max_requests_jitter: int = 0
    root_path: str = ""
    forwarded_allow_ips: str = "127.0.0.1,::1"
    access_log: str | None = None
    limit_request_line: int = 8190
    limit_request_fields: int = 100
    limit_request_field_size: int = 8190
    limit_request_body: int = 0
    chdir: str | None = None
    callable: str = "application"
    backlog: int = 2048
    worker_connections: int = 1000
    pid: str | None = None
    log_level: str = "info"


# name -> (type, minimum or None, help)
_OPTIONS: dict[str, tuple[type, float | None, str]] = {
    "bind": (list, None, "HOST:PORT, [::1]:PORT, unix:/path or fd://N; repeatable "
             "(default: systemd sockets if LISTEN_FDS is set, else 127.0.0.1:8000)"),
    "workers": (int, 1, "number of worker processes (default 2)"),
    "threads": (int, 1, "application threads per worker; 1 runs the app inline (default 1)"),
    "timeout": (float, 0, "kill and replace a worker silent for this many seconds; 0 disables (default 30)"),
    "graceful_timeout": (float, 0, "seconds in-flight requests get on SIGTERM/SIGHUP (default 30)"),
    "keep_alive": (float, 0, "seconds an idle keep-alive connection is kept (default 5)"),
    "max_requests": (int, 0, "restart a worker after this many requests; 0 disables (default 0)"),
    "max_requests_jitter": (int, 0, "add up to this many requests at random to --max-requests"),
    "root_path": (str, None, "SCRIPT_NAME the application is mounted at, e.g. /app"),
    "forwarded_allow_ips": (str, None, "comma list of proxy addresses/networks ('unix', '*') whose "
                            "X-Forwarded-For/-Proto are honoured (default 127.0.0.1,::1)"),
    "access_log": (str, None, "write an Apache combined access log to PATH, '-' for stdout"),
    "limit_request_line": (int, 16, "maximum request line length (default 8190)"),
    "limit_request_fields": (int, 1, "maximum number of header fields (default 100)"),
    "limit_request_field_size": (int, 16, "maximum size of one header field (default 8190)"),
    "limit_request_body": (int, 0, "maximum request body size in bytes; 0 is unlimited (default 0)"),
    "chdir": (str, None, "change to DIR before loading the application"),
    "callable": (str, None, "name of the WSGI callable in a script file, or in a module given "
                 "without ':callable' (default application)"),
    "backlog": (int, 1, "listen backlog (default 2048)"),
    "worker_connections": (int, 1, "maximum open connections per worker (default 1000)"),
    "pid": (str, None, "write the master's pid to this file"),
    "log_level": (str, None, "debug, info, warning or error (default info)"),
}
_LOG_LEVELS = ("debug", "info", "warning", "error")
_METAVARS = {
    "timeout": "SECONDS", "graceful_timeout": "SECONDS", "keep_alive": "SECONDS", "root_path": "PATH",
    "forwarded_allow_ips": "ADDRS", "access_log": "PATH", "chdir": "DIR", "callable": "NAME", "pid": "FILE",
    "log_level": "LEVEL", "limit_request_body": "BYTES", "limit_request_field_size": "BYTES",
    "limit_request_line": "BYTES",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="headrace",
        description="A strict, fast, pre-forking HTTP/1.1 WSGI server.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("app", nargs="?", help="module:callable, or a path to a WSGI script file")
    for name, (kind, _, help_text) in _OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        if kind is list:
            parser.add_argument(flag, "-b", dest=name, action="append", metavar="ADDR", help=help_text)
        elif name == "workers":
            parser.add_argument(flag, "-w", dest=name, metavar="N", help=help_text)
        else:
            parser.add_argument(flag, dest=name, metavar=_METAVARS.get(name, "N"), help=help_text)
    parser.add_argument("--config", "-c", metavar="FILE", help="TOML config file with the same keys")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the configuration, import the application and exit")
    parser.add_argument("--version", action="version", version=f"headrace {__version__}")
    return parser


def _coerce(name: str, value: Any, from_cli: bool) -> Any:
    kind, minimum, _ = _OPTIONS[name]
    flag = "--" + name.replace("_", "-") if from_cli else name
    if kind is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{flag}: expected a list of addresses")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{flag}: expected a string, got {value!r}")
        return value
    if from_cli:
        try:
            value = kind(value)
        except ValueError:
            raise ConfigError(f"{flag}: expected a number, got {value!r}") from None
    elif kind is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{flag}: expected an integer, got {value!r}")
    elif kind is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{flag}: expected a number, got {value!r}")
        value = float(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{flag}: must be at least {minimum:g}, got {value}")
    return value


def load_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from None
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name == "app":
            if not isinstance(value, str):
                raise ConfigError(f"{path}: app must be a string")
            values["app"] = value
            continue
        if name not in _OPTIONS:
            raise ConfigError(f"{path}: unknown config key {key!r}")
        values[name] = _coerce(name, value, from_cli=False)
    return values


def parse_args(argv: list[str]) -> tuple[Config, bool]:
    """Return the merged configuration and whether ``--check-config`` was given."""
    args = vars(build_parser().parse_args(argv))
    check = bool(args.pop("check_config", False))
    values: dict[str, Any] = {}
    config_path = args.pop("config", None)
    if config_path:
        values.update(load_toml(config_path))
    for name, value in args.items():
        values[name] = value if name == "app" else _coerce(name, value, from_cli=True)
    config = Config(**values)
    validate(config)
    return config, check


def validate(config: Config) -> None:
    if not config.app:
        raise ConfigError("no application given: pass APP (module:callable or a script path)")
    if config.log_level not in _LOG_LEVELS:
        raise ConfigError(f"--log-level: expected one of {', '.join(_LOG_LEVELS)}")
    if config.chdir is not None and not os.path.isdir(config.chdir):
        raise ConfigError(f"--chdir: no such directory: {config.chdir}")
    if config.root_path and not config.root_path.startswith("/"):
        raise ConfigError("--root-path: must start with '/'")
    for item in config.forwarded_allow_ips.split(","):
        item = item.strip()
        if item and item not in ("*", "unix"):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ConfigError(f"--forwarded-allow-ips: invalid address {item!r}") from None
    from headrace.sockets import parse_address

    for address in config.bind:
        parse_address(address)  # raises ConfigError


def option_names() -> list[str]:
    return [f.name for f in fields(Config)]
