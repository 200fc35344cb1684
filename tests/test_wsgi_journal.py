"""roles/releases/files/wsgi_journal.py, which every project app's loader calls: the app's log records and
stderr reach the journal under the app's name with their level as the priority. Here the journal is a
datagram socket of the test's own, read back in the journal's native protocol."""

from __future__ import annotations

import importlib.util
import logging
import socket
import struct
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[1] / "roles" / "releases" / "files" / "wsgi_journal.py"
spec = importlib.util.spec_from_file_location("wsgi_journal", MODULE)
wsgi_journal = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wsgi_journal)


def decode(datagram: bytes) -> dict[str, str]:
    """The native protocol back into fields (KEY=value lines, or KEY, a length and the bytes)."""
    fields, rest = {}, datagram
    while rest:
        line, _, after = rest.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()], rest = value.decode(), after
        else:
            (length,) = struct.unpack("<Q", after[:8])
            fields[line.decode()], rest = after[8:8 + length].decode(), after[8 + length + 1:]
    return fields


@pytest.fixture()
def journal(tmp_path: Path):
    """A journal socket, read with a timeout; the root logger's handlers and sys.stderr put back after."""
    path = tmp_path / "journal.socket"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(5)
    root = logging.getLogger()
    handlers, stderr = list(root.handlers), sys.stderr
    yield path, lambda: decode(server.recv(65536))
    root.handlers[:] = handlers
    sys.stderr = stderr
    server.close()


def test_records_go_to_the_journal_under_the_apps_name_with_their_level(journal) -> None:
    path, receive = journal
    assert wsgi_journal.install("shop", str(path)) is True
    logging.getLogger("shop.views").warning("stock low: %d left", 3)
    entry = receive()
    assert (entry["MESSAGE"], entry["PRIORITY"], entry["SYSLOG_IDENTIFIER"], entry["LOGGER"]) == (
        "stock low: 3 left", "4", "shop", "shop.views")
    logging.getLogger("shop").error("payment failed")
    assert receive()["PRIORITY"] == "3"
    # A traceback: one entry, its lines kept.
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("shop").exception("order failed")
    entry = receive()
    assert entry["MESSAGE"].startswith("order failed\nTraceback (most recent call last):")
    assert entry["MESSAGE"].endswith("ValueError: broken")


def test_each_line_of_stderr_is_an_entry_at_error_priority(journal) -> None:
    path, receive = journal
    wsgi_journal.install("shop", str(path))
    print("first line\nsecond", end="", file=sys.stderr)
    assert receive()["MESSAGE"] == "first line"
    sys.stderr.flush()
    entry = receive()
    assert (entry["MESSAGE"], entry["PRIORITY"], entry["SYSLOG_IDENTIFIER"]) == ("second", "3", "shop")


def test_installed_once_and_nowhere_without_a_journal(journal, tmp_path: Path) -> None:
    path, _ = journal
    wsgi_journal.install("shop", str(path))
    wsgi_journal.install("shop", str(path))
    root = logging.getLogger()
    assert len([h for h in root.handlers if isinstance(h, wsgi_journal.JournalHandler)]) == 1
    stderr = sys.stderr
    assert wsgi_journal.install("blog", str(tmp_path / "no-journal")) is False
    assert sys.stderr is stderr


@pytest.mark.parametrize(("level", "expected"), [
    (logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6), (logging.DEBUG, 7)])
def test_levels_map_to_syslog_priorities(level: int, expected: int) -> None:
    assert wsgi_journal.priority(level) == expected
