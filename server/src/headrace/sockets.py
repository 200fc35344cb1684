"""Listening sockets: parsing bind addresses, binding, systemd socket activation, sd_notify."""

from __future__ import annotations

import os
import socket
import stat
from dataclasses import dataclass

from headrace.errors import ConfigError

SD_LISTEN_FDS_START = 3


@dataclass(frozen=True)
class Address:
    kind: str  # "tcp", "unix" or "fd"
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1


def parse_address(text: str) -> Address:
    """``HOST:PORT``, ``[V6]:PORT``, ``unix:/path`` or ``fd://N``."""
    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise ConfigError(f"--bind {text!r}: empty unix socket path")
        return Address("unix", path=path)
    if text.startswith("fd://"):
        num = text[5:]
        if not num.isdigit():
            raise ConfigError(f"--bind {text!r}: expected fd://N with a file descriptor number")
        return Address("fd", fd=int(num))
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ConfigError(f"--bind {text!r}: expected [IPV6]:PORT")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = text, "8000"
        if ":" in host:
            raise ConfigError(f"--bind {text!r}: put IPv6 addresses in brackets, e.g. [::1]:8000")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--bind {text!r}: invalid port {port!r}")
    return Address("tcp", host=host or "0.0.0.0", port=int(port))


def bind(address: Address, backlog: int) -> socket.socket:
    """Create, bind and listen; an OSError here becomes a one-line ConfigError."""
    if address.kind == "fd":
        try:
            sock = socket.socket(fileno=address.fd)
        except OSError as exc:
            raise ConfigError(f"fd://{address.fd}: not a socket ({exc.strerror})") from None
        return sock
    if address.kind == "unix":
        path = address.path
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                probe = socket.socket(socket.AF_UNIX)
                try:
                    probe.connect(path)
                except OSError:
                    os.unlink(path)  # stale socket from a previous run
                else:
                    raise ConfigError(f"unix:{path}: another server is listening there")
                finally:
                    probe.close()
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            sock.listen(backlog)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot bind unix:{path}: {exc.strerror}") from None
        return sock
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve {address.host!r}: {exc.strerror}") from None
    family, socktype, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot bind {address.host}:{address.port}: {exc.strerror}") from None
    return sock


def defer_accept(sock: socket.socket, seconds: int) -> None:
    """Let the kernel hold a new TCP connection until the client's first bytes arrive.

    Why: a worker that accepts a connection before its request is there must park it in
    epoll and count it as load, and a count inflated by such connections made the workers
    defer new connections to each other (1 ms balance pauses) under a stream of short
    connections, leaving the machine 38% idle (``bench/cpu_split.py``).  With
    ``TCP_DEFER_ACCEPT`` every accepted connection has its request waiting: it is read,
    answered and, with ``Connection: close``, closed in the same wake-up.  A client that
    connects and stays silent is handed over after ``seconds`` (Linux completes it on the
    first SYN-ACK retransmission after that) and then meets the usual timeouts (with nothing
    sent, ``--keep-alive``'s), so it costs the kernel a request socket meanwhile, never a worker.  Unix sockets have no
    such option and are left as they are; so is ``seconds`` 0, which turns it off.
    """
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, seconds)


def systemd_sockets() -> list[socket.socket]:
    """Sockets passed by systemd socket activation (``LISTEN_FDS``/``LISTEN_PID``)."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    socks = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
        os.set_inheritable(fd, False)
        socks.append(socket.socket(fileno=fd))
    return socks


def describe(sock: socket.socket) -> tuple[str, str, str]:
    """(printable address, SERVER_NAME, SERVER_PORT) for a listening socket."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        path = name if isinstance(name, str) else name.decode(errors="replace")
        return f"unix:{path}", "localhost", "80"
    host, port = name[0], str(name[1])
    if sock.family == socket.AF_INET6:
        return f"[{host}]:{port}", f"[{host}]", port
    return f"{host}:{port}", host, port


def sd_notify(message: str) -> None:
    """Tell systemd about our state (Type=notify); a no-op outside systemd."""
    target = os.environ.get("NOTIFY_SOCKET")
    if not target:
        return
    if target.startswith("@"):
        target = "\0" + target[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(target)
            sock.sendall(message.encode())
    except OSError:
        pass
