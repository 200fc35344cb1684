"""Access log in Apache combined format, written by each worker to a shared append-mode file."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class AccessLog:
    """``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"``; ``-`` means stdout."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stream: TextIO = sys.stdout
        self._second = -1
        self._stamp = ""
        self.reopen()

    def reopen(self) -> None:
        """Reopen the file (SIGUSR1), so log rotation works without a restart."""
        if self.path == "-":
            self._stream = sys.stdout
            return
        old = self._stream
        self._stream = open(self.path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        if old is not sys.stdout:
            old.close()

    def _timestamp(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(now))
        return self._stamp

    def log(self, environ: dict, status: str, size: int) -> None:
        user = environ.get("REMOTE_USER") or "-"
        request = f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"
        self._stream.write(
            f'{environ.get("REMOTE_ADDR") or "-"} - {user} {self._timestamp()} "{_quote(request)}" '
            f'{status[:3]} {size or "-"} "{_quote(environ.get("HTTP_REFERER", "-"))}" '
            f'"{_quote(environ.get("HTTP_USER_AGENT", "-"))}"\n'
        )

    def log_rejected(self, remote_addr: str, status: int, size: int) -> None:
        """A request refused by the parser: there is no trustworthy request line to show."""
        self._stream.write(f'{remote_addr or "-"} - - {self._timestamp()} "-" {status} {size} "-" "-"\n')

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass
