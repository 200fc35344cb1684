#!/usr/bin/env python3
"""Where the CPU goes on a new connection per request: the client, the server, or nowhere (idle).

    python bench/cpu_split.py                          # 3 interleaved rounds of 8 s
    python bench/cpu_split.py --rounds 5 --duration 6

A server that is slow on new connections may be short of CPU, or it may hold connections back
while the machine idles; the request rate alone does not say which.  For each case this runs
``wrk -t1 -c32`` with ``Connection: close`` against the hello-world app (two workers each) and
reads, over the middle of the run, the CPU that wrk and the server's processes used per request
(``/proc/PID/stat``, user and system) and how idle the whole machine was (``/proc/stat``):

    headrace --defer-accept 0   connections handed over at the end of the handshake (before)
    headrace balancer off       the same, with the balance between workers switched off (an
                                experiment: the module constant patched in the server process)
    headrace                    the default, --defer-accept 1
    uWSGI http-socket           the reference of the close mode (skipped if uwsgi is missing)

Run from ``server/`` in the venv of ``run.py``.  Only loopback traffic, bounded by --rounds and
--duration; the table shows medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import commands, free_port, group_cpu, parse_wrk, start_server, stop, wait_ready

# The server as ``python -m headrace`` would run it, with the balance check never deferring.
BALANCER_OFF = ("import sys, headrace.worker as w; w._BALANCE_SLACK = 10 ** 9; "
                "from headrace.cli import main; sys.exit(main(sys.argv[1:]))")


def machine_ticks() -> tuple[int, int]:
    """(all, idle + iowait) clock ticks of the machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[3] + values[4]


def cases(port: int) -> dict[str, list[str]]:
    base = commands(port, 2)
    headrace = base["headrace"]
    found = {
        "headrace --defer-accept 0": [*headrace[:-1], "--defer-accept", "0", headrace[-1]],
        "headrace balancer off": [sys.executable, "-c", BALANCER_OFF, *headrace[3:-1], "--defer-accept", "0",
                                  headrace[-1]],
        "headrace": headrace,
    }
    if base["uWSGI http-socket"]:
        found["uWSGI http-socket"] = base["uWSGI http-socket"]
    return found


def measure(cmd: list[str], port: int, duration: int) -> dict[str, float]:
    server = start_server(cmd)
    try:
        wait_ready(port)
        wrk = subprocess.Popen(["wrk", "-t1", "-c32", f"-d{duration}s", "-H", "Connection: close",
                                f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True)
        time.sleep(1)  # past wrk's start
        window = duration - 2
        before = group_cpu(server.pid), group_cpu(wrk.pid), machine_ticks()
        time.sleep(window)
        after = group_cpu(server.pid), group_cpu(wrk.pid), machine_ticks()
        result = parse_wrk(wrk.communicate()[0])
    finally:
        stop(server)
    requests = result["rps"] * window
    total, idle = (a - b for a, b in zip(after[2], before[2], strict=True))
    return {"rps": result["rps"], "errors": result["non2xx"],
            "server_us": (after[0] - before[0]) / requests * 1e6,
            "wrk_cpu": (after[1] - before[1]) / window * 100,
            "idle": idle / total * 100}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per case and round (at least 4)")
    args = parser.parse_args()
    if not 4 <= args.duration <= 60 or not 1 <= args.rounds <= 20:
        parser.error("keep the load bounded: 4 <= --duration <= 60, 1 <= --rounds <= 20")
    port = free_port()
    plan = cases(port)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in plan}
    for round_number in range(1, args.rounds + 1):
        for name, cmd in plan.items():
            runs[name].append(measure(cmd, port, args.duration))
            print(f"round {round_number} {name}: {runs[name][-1]}", file=sys.stderr)
    print(f"\nwrk -t1 -c32 -d{args.duration}s, Connection: close, {args.rounds} interleaved rounds, medians\n")
    print("| server | req/s | wrk CPU | server CPU per request | machine idle | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, results in runs.items():
        def median(key: str, results: list[dict[str, float]] = results) -> float:
            return statistics.median(r[key] for r in results)
        print(f"| {name} | {median('rps'):,.0f} | {median('wrk_cpu'):.0f}% | {median('server_us'):.1f} µs | "
              f"{median('idle'):.0f}% | {sum(r['errors'] for r in results):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
