"""A project app's log records and its stderr, sent to the systemd journal under the app's name.

The loader of every project app (templates/project.wsgi.j2) calls install() before it imports the app, in
every mode: mod_wsgi's embedded and daemon processes would otherwise write the app's warnings and tracebacks
into Apache's error log as `wsgi:error` lines, mixed with every other app's, and headrace's under its own
unit's name. With this, `journalctl -t shop -p warning` shows the app `shop`'s warnings on any host, each
with its level as the journal's priority.

It speaks the journal's native protocol (a datagram per record to journald's socket, which every local user
may write to) itself: the app's venv needs no python-systemd, and nothing here depends on the server.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import struct
import sys
import threading

SOCKET = "/run/systemd/journal/socket"
# A datagram well under the socket's buffer (journald takes larger ones only through a memory file).
MAX_MESSAGE = 48 * 1024
STDERR_PRIORITY = 3  # err: what a program writes to stderr has no level of its own


def priority(level: int) -> int:
    """The syslog priority of a logging level: critical 2, error 3, warning 4, info 6, debug 7."""
    if level >= logging.CRITICAL:
        return 2
    if level >= logging.ERROR:
        return 3
    if level >= logging.WARNING:
        return 4
    if level >= logging.INFO:
        return 6
    return 7


def encode(fields: dict[str, str]) -> bytes:
    """Fields in the native protocol: KEY=value lines, or KEY, a little-endian 64-bit length and the bytes
    for a value with a newline in it (a traceback)."""
    parts = []
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            parts.append(key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(key.encode() + b"=" + data + b"\n")
    return b"".join(parts)


class JournalSender:
    """One unconnected datagram socket of a process, shared by its handler and its stderr."""

    def __init__(self, identifier: str, path: str = SOCKET) -> None:
        self.identifier = identifier
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.pid = os.getpid()

    def send(self, message: str, level_priority: int, **fields: str) -> None:
        if os.getpid() != self.pid:  # a forked child: a socket of its own
            self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.pid = os.getpid()
        record = {"MESSAGE": message[:MAX_MESSAGE], "PRIORITY": str(level_priority),
                  "SYSLOG_IDENTIFIER": self.identifier, **fields}
        self.socket.sendto(encode(record), self.path)


class JournalHandler(logging.Handler):
    """A logging handler: each record one journal entry, its level as the priority, its logger's name."""

    def __init__(self, sender: JournalSender) -> None:
        super().__init__()
        self.sender = sender

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sender.send(self.format(record), priority(record.levelno), LOGGER=record.name,
                             CODE_FILE=str(record.pathname), CODE_LINE=str(record.lineno))
        except Exception:  # noqa: BLE001 - logging's contract: a handler reports its own failure
            self.handleError(record)


class JournalStream(io.TextIOBase):
    """A text stream (the app's sys.stderr) whose every line is one journal entry at one priority."""

    def __init__(self, sender: JournalSender, level_priority: int = STDERR_PRIORITY) -> None:
        super().__init__()
        self.sender = sender
        self.level_priority = level_priority
        self.pending = ""
        self.lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self.lock:
            *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self._send(line)
        return len(text)

    def flush(self) -> None:
        with self.lock:
            line, self.pending = self.pending, ""
        if line:
            self._send(line)

    def _send(self, line: str) -> None:
        try:
            self.sender.send(line, self.level_priority)
        except OSError:
            pass  # stderr must never fail the app; the journal is gone only while the host stops


def install(identifier: str, path: str = SOCKET) -> bool:
    """Send the process's log records (a handler on the root logger) and its stderr to the journal under
    `identifier`; once per process and identifier. False, changing nothing, where there is no journal."""
    if not os.path.exists(path):
        return False
    root = logging.getLogger()
    if any(isinstance(handler, JournalHandler) and handler.sender.identifier == identifier
           for handler in root.handlers):
        return True
    sender = JournalSender(identifier, path)
    root.addHandler(JournalHandler(sender))
    sys.stderr = JournalStream(sender)
    return True
