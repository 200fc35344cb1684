#!/usr/bin/env python3
"""Worker memory over a long run: RSS after 10k and 1M requests, and with idle connections open.

Starts headrace with one worker (so every connection and request lands in the process that
is measured) on a loopback port, then reads the worker's ``VmRSS`` at each step:

1. after boot and one request;
2. after 10 000 keep-alive requests (a Python client, counted exactly);
3. after 1 000 000 requests in all (wrk keep-alive, repeated until the count is reached);
4. after a further ``--close-requests`` requests with a new connection each (wrk with
   ``Connection: close``), so per-connection allocations that leaked would show;
5. with ``--idle`` idle keep-alive connections open (each has served one request), and
   the cost per connection: (RSS with them - RSS before) / count;
6. after those connections closed.

    python bench/memory.py                   # about a minute on a 2-CPU machine
    python bench/memory.py --requests 200000 --idle 1000

RSS counts the worker's own pages (Python objects, buffers); the kernel's socket buffers
are not part of it.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from run import free_port, start_server, stop  # started and ended as the speed benchmark does

REQUEST = b"GET / HTTP/1.1\r\nHost: memory\r\n\r\n"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def read_response(sock: socket.socket) -> None:
    data = b""
    while b"Hello World!" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk


def keep_alive_requests(port: int, count: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            sock.sendall(REQUEST)
            read_response(sock)


def wrk_until(port: int, count: int, close: bool) -> int:
    """Run wrk in 5 s slices until it has completed ``count`` requests; returns how many it did."""
    done = 0
    cmd = ["wrk", "-t1", "-c32", "-d5s"]
    if close:
        cmd += ["-H", "Connection: close"]
    while done < count:
        out = subprocess.run([*cmd, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
        done += int(re.search(r"(\d+) requests in", out).group(1))
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="keep-alive requests in all")
    parser.add_argument("--close-requests", type=int, default=200_000,
                        help="then this many with a new connection each")
    parser.add_argument("--idle", type=int, default=1000, help="idle keep-alive connections to hold open")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is required (apt-get install wrk)", file=sys.stderr)
        return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.idle + 200
    if soft < need:  # the client holds the idle connections, the worker their other ends
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need, soft), hard), hard))

    port = free_port()
    proc = start_server(
        [sys.executable, "-m", "headrace", "--workers", "1", "--bind", f"127.0.0.1:{port}", "--keep-alive", "300",
         "--worker-connections", str(args.idle + 100), "--log-level", "warning", "hello:application"])
    rows: list[tuple[str, int, int]] = []
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                keep_alive_requests(port, 1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        workers = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True,
                                 check=True).stdout.split()
        worker = int(workers[0])
        served = 1

        def mark(label: str) -> None:
            time.sleep(0.5)  # let the worker finish closing what the client just closed
            rows.append((label, served, rss_kib(worker)))
            print(f"{label:55s} {served:>9d} requests  {rows[-1][2] / 1024:7.1f} MiB", file=sys.stderr, flush=True)

        mark("after boot and one request")
        keep_alive_requests(port, 10_000 - served)
        served = 10_000
        mark("after 10k keep-alive requests")
        served += wrk_until(port, args.requests - served, close=False)
        mark("after 1M requests (wrk keep-alive)" if args.requests == 1_000_000 else
             f"after {args.requests} requests (wrk keep-alive)")
        served += wrk_until(port, args.close_requests, close=True)
        mark(f"after {args.close_requests} more, a new connection each")
        before_idle = rows[-1][2]
        idle = []
        for _ in range(args.idle):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(REQUEST)
            read_response(sock)
            idle.append(sock)
        served += args.idle
        mark(f"with {args.idle} idle keep-alive connections open")
        with_idle = rows[-1][2]
        for sock in idle:
            sock.close()
        mark("after they closed")
    finally:
        stop(proc)

    print("\n| worker state | requests served | RSS |")
    print("|---|---:|---:|")
    for label, count, kib in rows:
        print(f"| {label} | {count:,} | {kib / 1024:.1f} MiB |")
    per_conn = (with_idle - before_idle) / args.idle
    print(f"\nper idle keep-alive connection: {per_conn:.1f} KiB of worker RSS "
          f"(({with_idle} - {before_idle}) KiB / {args.idle})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
