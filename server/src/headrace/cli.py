"""Command line entry point: ``headrace [options] APP``."""

from __future__ import annotations

import logging
import os
import sys

from headrace.app_loader import is_script_path
from headrace.config import Config, parse_args
from headrace.errors import USAGE_ERROR, ConfigError
from headrace.sockets import bind, describe, parse_address, systemd_sockets


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper()),
        format="%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
    )


def _prepare(config: Config) -> None:
    """Checks that need the filesystem; still before anything is bound."""
    if config.chdir:
        os.chdir(config.chdir)
    assert config.app is not None
    if is_script_path(config.app) and not os.path.isfile(config.app):
        raise ConfigError(f"WSGI script not found: {config.app}")
    if config.access_log and config.access_log != "-":
        try:
            with open(config.access_log, "a"):
                pass
        except OSError as exc:
            raise ConfigError(f"--access-log {config.access_log}: {exc.strerror}") from None


def _check(config: Config) -> int:
    from headrace.app_loader import load_app

    try:
        load_app(config.app or "", config.callable)
    except Exception as exc:
        print(f"headrace: error: cannot load {config.app}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"headrace: configuration OK, application {config.app} loads")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sockets = []
    try:
        config, check = parse_args(argv)
        _setup_logging(config.log_level)
        _prepare(config)
        if check:
            return _check(config)
        unix_paths = []
        for text in config.bind:
            address = parse_address(text)
            sockets.append(bind(address, config.backlog))
            if address.kind == "unix":
                unix_paths.append(address.path)
        if not sockets:
            sockets = systemd_sockets()
        if not sockets:
            sockets.append(bind(parse_address("127.0.0.1:8000"), config.backlog))
        if config.pid:
            try:
                with open(config.pid, "w") as handle:
                    handle.write(f"{os.getpid()}\n")
            except OSError as exc:
                raise ConfigError(f"--pid {config.pid}: {exc.strerror}") from None
    except ConfigError as exc:
        for sock in sockets:
            sock.close()
        print(f"headrace: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    from headrace.master import Master

    log = logging.getLogger("headrace")
    for sock in sockets:
        log.info("listening on %s", describe(sock)[0])
    return Master(config, sockets, unix_paths, reload_config=lambda: parse_args(argv)[0]).run()


if __name__ == "__main__":
    raise SystemExit(main())
