#!/usr/bin/env python3
"""HTTPS against HTTP through the lab's balancer, side by side: keep-alive, a new connection per request (a
full TLS handshake each), and HTTP/2.

    make deploy                                   # the lab: the balancer ends TLS for www.example.com
    .venv/bin/python bench/tls.py                 # 5 interleaved rounds of 10 s per case
    .venv/bin/python bench/tls.py --rounds 3 --duration 5

Every case asks the lab's www.example.com for / (the hello-world app in daemon mode on the web servers,
through the balancer's pooled plain-HTTP connections), on the balancer's published ports:

    http          wrk, HTTP/1.1 keep-alive, port 80 (lab_http_port)
    https         wrk, HTTP/1.1 keep-alive over TLS, port 443 (lab_https_port)
    http-close    wrk with Connection: close: a new TCP connection per request
    https-close   the same over TLS: a new connection and a full handshake per request (wrk offers no
                  session to resume, and session tickets are off): its rate is the handshake rate
    h2            h2load (Debian's nghttp2-client), HTTP/2 over TLS, one stream at a time per connection
    h2-streams    h2load, the same number of requests in flight multiplexed on an eighth of the
                  connections (8 streams each): what HTTP/2's multiplexing changes at equal concurrency

The lab's certificate is self-signed (wrk and h2load do not verify); the default HTTPS VirtualHost of the
balancer is www.example.com, so no SNI is needed. Rounds are interleaved so a noisy machine hurts every case
alike; the table shows medians and the ratios. Only loopback traffic, bounded by --rounds and --duration.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "inventories" / "lab" / "hosts.yml"
SITE = "www.example.com"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def balancer_ports() -> tuple[int, int]:
    """The lab balancer's published HTTP and HTTPS ports, from the lab inventory."""
    hosts = yaml.safe_load(INVENTORY.read_text())["all"]["children"]["balancers"]["hosts"]
    balancer = next(iter(hosts.values()))
    return int(balancer["lab_http_port"]), int(balancer["lab_https_port"])


def wrk(url: str, args: argparse.Namespace, close: bool) -> dict:
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s", "--latency",
               "-H", f"Host: {SITE}"]
    if close:
        command += ["-H", "Connection: close"]
    out = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    value, unit = re.search(r"^\s+99%\s+([0-9.]+)(us|ms|s)\s*$", out, re.MULTILINE).groups()
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
            "p99_ms": float(value) * UNITS[unit],
            "errors": (errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else "")}


def h2load(url: str, args: argparse.Namespace, streams: int) -> dict:
    """h2load with ``streams`` per connection and --connections requests in flight in all."""
    connections = max(args.threads, args.connections // streams)
    out = subprocess.run(
        ["h2load", "-t", str(args.threads), "-c", str(connections), "-m", str(streams),
         "-D", str(args.duration), "-H", f":authority: {SITE}", url],
        check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"finished in [0-9.]+\w+, ([0-9.]+) req/s", out).group(1))
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                     out)
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not re.search(r"Application protocol: h2", out):
        raise SystemExit(f"h2load did not negotiate h2:\n{out}")
    bad = int(done.group(3)) + int(done.group(4)) + sum(int(n) for n in status.groups()[1:])
    # h2load reports the latency spread per request, not percentiles: the mean and the max it saw.
    request = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    return {"rps": rps, "p99_ms": parse_time(request.group(2)), "errors": f"{bad} failed" if bad else ""}


def parse_time(text: str) -> float:
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()
    return float(value) * UNITS[unit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10, help="seconds per case and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if args.duration > 60 or args.rounds > 20:
        parser.error("keep the load bounded: --duration <= 60, --rounds <= 20")
    missing = [tool for tool in ("wrk", "h2load") if shutil.which(tool) is None]
    if missing:
        parser.error(f"missing {', '.join(missing)}: apt-get install wrk nghttp2-client")
    http_port, https_port = balancer_ports()
    http, https = f"http://127.0.0.1:{http_port}/", f"https://127.0.0.1:{https_port}/"
    cases = {
        "http": lambda: wrk(http, args, close=False),
        "https": lambda: wrk(https, args, close=False),
        "http-close": lambda: wrk(http, args, close=True),
        "https-close": lambda: wrk(https, args, close=True),
        "h2": lambda: h2load(https, args, streams=1),
        "h2-streams": lambda: h2load(https, args, streams=8),
    }
    results: dict[str, list[dict]] = {name: [] for name in cases}
    for round_number in range(1, args.rounds + 1):
        for name, measure in cases.items():
            results[name].append(measure())
            print(f"round {round_number} {name}: {results[name][-1]}", file=sys.stderr)
    median = {name: statistics.median(r["rps"] for r in runs) for name, runs in results.items()}
    print(f"\n{args.rounds} rounds x {args.duration} s, {args.connections} connections, {args.threads} threads, "
          f"medians; GET / of {SITE} through the lab balancer")
    print("| case | req/s | p99 ms (h2load: max) | errors |\n| --- | ---: | ---: | --- |")
    for name, runs in results.items():
        errors = "; ".join(sorted({r["errors"] for r in runs if r["errors"]})) or "none"
        print(f"| {name} | {median[name]:,.0f} | {statistics.median(r['p99_ms'] for r in runs):.1f} | {errors} |")
    print(f"\nHTTPS / HTTP, keep-alive: {median['https'] / median['http']:.2f}x; new connection per request: "
          f"{median['https-close'] / median['http-close']:.2f}x (handshakes/s: {median['https-close']:,.0f})")
    print(f"h2 / HTTPS 1.1 keep-alive: {median['h2'] / median['https']:.2f}x; with 8 streams per connection: "
          f"{median['h2-streams'] / median['https']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
