"""A forked worker process from start to exit: load the application, wire the layers, run the loop.

The master forks and calls :func:`worker_main`; everything the worker needs is built here
from the configuration, so the event loop, the protocol and the WSGI adapter take plain
objects and never read the configuration themselves.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import struct
import sys

from headrace.access_log import AccessLog
from headrace.app_loader import load_app
from headrace.config import Config
from headrace.errors import BOOT_FAILURE
from headrace.forwarded import make_trust
from headrace.http_parser import Limits
from headrace.scoreboard import Scoreboard
from headrace.sockets import defer_accept, describe
from headrace.worker import Listener, Worker
from headrace.wsgi import Adapter, EnvironFactory

log = logging.getLogger("headrace.worker")


def worker_main(config: Config, sockets: list[socket.socket], slot: int, scoreboard: Scoreboard,
                ready_fd: int) -> int:
    """Entry point of a forked worker: load the app, report ready on ``ready_fd``, run the loop."""
    scoreboard.beat(slot)
    try:
        app = load_app(config.app, config.callable)
    except BaseException:
        log.exception("worker %d failed to load the application %s", os.getpid(), config.app)
        return BOOT_FAILURE
    listeners = []
    for sock in sockets:
        sock.setblocking(False)
        # Set on the shared listening socket by every new worker, so a reload applies a changed value.
        defer_accept(sock, config.defer_accept)
        _, server_name, server_port = describe(sock)
        listeners.append(Listener(sock, server_name, server_port))
    max_requests = config.max_requests
    if max_requests and config.max_requests_jitter:
        max_requests += random.randint(0, config.max_requests_jitter)
    access_log = AccessLog(config.access_log) if config.access_log else None
    factory = EnvironFactory(root_path=config.root_path, multithread=config.threads > 1,
                             multiprocess=config.workers > 1)
    worker = Worker(
        adapter=Adapter(app, factory, access_log),
        listeners=listeners,
        limits=Limits(config.limit_request_line, config.limit_request_fields,
                      config.limit_request_field_size, config.limit_request_body),
        keep_alive=config.keep_alive,
        timeout=config.timeout,
        threads=config.threads,
        max_requests=max_requests,
        trust=make_trust(config.forwarded_allow_ips),
        access_log=access_log,
        scoreboard=scoreboard,
        slot=slot,
        worker_connections=config.worker_connections,
    )
    worker.install_signals()
    os.write(ready_fd, struct.pack("=I", os.getpid()))
    os.close(ready_fd)
    code = worker.run()
    sys.stdout.flush()
    return code
