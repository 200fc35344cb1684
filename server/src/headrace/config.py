"""Options: one record per option drives the command line, the TOML config file and validation.

Each :class:`Option` holds everything about a setting (name, type, default, bounds,
validator, command-line flag, one-line help), the way gunicorn's settings do; the
:class:`Config` dataclass, the argparse parser, the accepted TOML keys and the checks are
all derived from :data:`OPTIONS`, so adding an option is adding one record.

The command line overrides the config file.  Every error becomes a :class:`ConfigError`
with one clear line, raised before any socket is bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from headrace import __version__
from headrace.errors import ConfigError
from headrace.forwarded import parse_allow_list
from headrace.sockets import parse_address

__all__ = ["OPTIONS", "Config", "ConfigError", "Option", "build_parser", "load_toml", "parse_args", "validate"]

_LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Option:
    """One setting.  ``check`` runs on the merged value and raises ValueError (or ConfigError)."""

    name: str  # attribute name and config-file key (``-`` or ``_``)
    kind: type  # int, float, str or list (of str); how CLI text and TOML values are parsed
    default: Any
    help: str
    metavar: str = "N"
    short: str | None = None
    minimum: float | None = None
    check: Callable[[Any], None] | None = None
    optional: bool = False  # the default is None (unset) rather than a value of ``kind``
    positional: bool = False  # given on the command line without a flag

    @property
    def flag(self) -> str:
        return self.name if self.positional else "--" + self.name.replace("_", "-")

    def parse(self, value: Any, from_cli: bool) -> Any:
        """Convert and type-check one value; errors name the flag (CLI) or the key (file)."""
        label = self.flag if from_cli else self.name
        kind = self.kind
        if kind is list:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{label}: expected a list of addresses")
            return value
        if kind is str:
            if not isinstance(value, str):
                raise ConfigError(f"{label}: expected a string, got {value!r}")
            return value
        if from_cli:
            try:
                value = kind(value)
            except ValueError:
                raise ConfigError(f"{label}: expected a number, got {value!r}") from None
        elif kind is int and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(f"{label}: expected an integer, got {value!r}")
        elif kind is float:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"{label}: expected a number, got {value!r}")
            value = float(value)
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{label}: must be at least {self.minimum:g}, got {value}")
        return value

    def validate(self, value: Any) -> None:
        if self.check is None:
            return
        try:
            self.check(value)
        except ValueError as exc:
            raise ConfigError(f"--{self.name.replace('_', '-')}: {exc}") from None


# -- validators (they see the merged value) ----------------------------------------------
def _require_app(value: str | None) -> None:
    if not value:
        raise ConfigError("no application given: pass APP (module:callable or a script path)")


def _check_log_level(value: str) -> None:
    if value not in _LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}")


def _check_dir(value: str | None) -> None:
    if value is not None and not os.path.isdir(value):
        raise ValueError(f"no such directory: {value}")


def _check_root_path(value: str) -> None:
    if value and not value.startswith("/"):
        raise ValueError("must start with '/'")


def _check_addresses(value: list[str]) -> None:
    for address in value:
        parse_address(address)  # raises ConfigError naming the address


OPTIONS: tuple[Option, ...] = (
    Option("app", str, None, "module:callable, or a path to a WSGI script file", optional=True,
           positional=True, check=_require_app),
    Option("bind", list, [], "HOST:PORT, [::1]:PORT, unix:/path or fd://N; repeatable "
           "(default: systemd sockets if LISTEN_FDS is set, else 127.0.0.1:8000)", metavar="ADDR", short="-b",
           check=_check_addresses),
    Option("workers", int, 2, "number of worker processes (default 2)", short="-w", minimum=1),
    Option("threads", int, 1, "application threads per worker; 1 runs the app inline (default 1)", minimum=1),
    Option("timeout", float, 30.0, "kill and replace a worker silent for this many seconds; 0 disables "
           "(default 30)", metavar="SECONDS", minimum=0),
    Option("graceful_timeout", float, 30.0, "seconds in-flight requests get on SIGTERM/SIGHUP (default 30)",
           metavar="SECONDS", minimum=0),
    Option("keep_alive", float, 5.0, "seconds an idle keep-alive connection is kept (default 5)",
           metavar="SECONDS", minimum=0),
    Option("max_requests", int, 0, "restart a worker after this many requests; 0 disables (default 0)",
           minimum=0),
    Option("max_requests_jitter", int, 0, "add up to this many requests at random to --max-requests", minimum=0),
    Option("root_path", str, "", "SCRIPT_NAME the application is mounted at, e.g. /app", metavar="PATH",
           check=_check_root_path),
    Option("forwarded_allow_ips", str, "127.0.0.1,::1", "comma list of proxy addresses/networks ('unix', '*') "
           "whose X-Forwarded-For/-Proto are honoured (default 127.0.0.1,::1)", metavar="ADDRS",
           check=parse_allow_list),
    Option("access_log", str, None, "write an Apache combined access log to PATH, '-' for stdout",
           metavar="PATH", optional=True),
    Option("limit_request_line", int, 8190, "maximum request line length (default 8190)", metavar="BYTES",
           minimum=16),
    Option("limit_request_fields", int, 100, "maximum number of header fields (default 100)", minimum=1),
    Option("limit_request_field_size", int, 8190, "maximum size of one header field (default 8190)",
           metavar="BYTES", minimum=16),
    Option("limit_request_body", int, 0, "maximum request body size in bytes; 0 is unlimited (default 0)",
           metavar="BYTES", minimum=0),
    Option("chdir", str, None, "change to DIR before loading the application", metavar="DIR", optional=True,
           check=_check_dir),
    Option("callable", str, "application", "name of the WSGI callable in a script file, or in a module given "
           "without ':callable' (default application)", metavar="NAME"),
    Option("backlog", int, 2048, "listen backlog (default 2048)", minimum=1),
    Option("defer_accept", int, 1, "TCP: hand a connection to a worker once its first bytes have arrived, one "
           "that stays silent after this many seconds; 0 at once (default 1)", metavar="SECONDS", minimum=0),
    Option("worker_connections", int, 1000, "maximum open connections per worker (default 1000)", minimum=1),
    Option("pid", str, None, "write the master's pid to this file", metavar="FILE", optional=True),
    Option("log_level", str, "info", "debug, info, warning or error (default info)", metavar="LEVEL",
           check=_check_log_level),
)
_BY_NAME = {option.name: option for option in OPTIONS}


def _field(option: Option) -> tuple[str, Any, Any]:
    kind: Any = list[str] if option.kind is list else option.kind
    if option.optional:
        kind = kind | None
    if isinstance(option.default, list):
        return option.name, kind, dataclasses.field(default_factory=option.default.copy)
    return option.name, kind, dataclasses.field(default=option.default)


Config = dataclasses.make_dataclass("Config", [_field(option) for option in OPTIONS])
Config.__module__ = __name__
Config.__doc__ = "The merged settings: one attribute per entry of OPTIONS, with its default."


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="headrace",
        description="A strict, fast, pre-forking HTTP/1.1 WSGI server.",
        argument_default=argparse.SUPPRESS,
    )
    for option in OPTIONS:
        if option.positional:
            parser.add_argument(option.name, nargs="?", help=option.help)
            continue
        flags = [option.flag] + ([option.short] if option.short else [])
        action = "append" if option.kind is list else "store"
        parser.add_argument(*flags, dest=option.name, action=action, metavar=option.metavar, help=option.help)
    # Commands rather than settings: not config-file keys.
    parser.add_argument("--config", "-c", metavar="FILE", help="TOML config file with the same keys")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the configuration, import the application and exit")
    parser.add_argument("--version", action="version", version=f"headrace {__version__}")
    return parser


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
        option = _BY_NAME.get(key.replace("-", "_"))
        if option is None:
            raise ConfigError(f"{path}: unknown config key {key!r}")
        values[option.name] = option.parse(value, from_cli=False)
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
        values[name] = _BY_NAME[name].parse(value, from_cli=True)
    config = Config(**values)
    validate(config)
    return config, check


def validate(config: Config) -> None:
    for option in OPTIONS:
        option.validate(getattr(config, option.name))
