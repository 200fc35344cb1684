#!/usr/bin/env python3
"""Side-by-side WSGI server benchmark on loopback with wrk (keep-alive).

Serves the seed's hello-world app with headrace, gunicorn (sync and gthread), waitress and
uWSGI, two workers each where the server has workers, and loads each with wrk.  Rounds are
interleaved (every server once per round) so a noisy machine hurts all servers alike; the
table shows medians and ratios.  Only loopback traffic, bounded by --duration and --rounds.

    python bench/run.py --rounds 3 --duration 8

Servers whose command is not installed are skipped.  Run from a venv that has gunicorn,
waitress and uwsgi installed (``pip install gunicorn waitress uwsgi``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool(name: str) -> str | None:
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def commands(port: int, workers: int) -> dict[str, list[str] | None]:
    addr = f"127.0.0.1:{port}"
    gunicorn = tool("gunicorn")
    waitress = tool("waitress-serve")
    uwsgi = tool("uwsgi")
    uwsgi_common = [
        "--wsgi-file", str(HERE / "hello.py"), "--processes", str(workers), "--master",
        "--disable-logging", "--die-on-term", "--need-app",
    ]
    return {
        "headrace": [sys.executable, "-m", "headrace", "--workers", str(workers), "--bind", addr,
                     "--log-level", "warning", "hello:application"],
        "gunicorn sync": [gunicorn, "--workers", str(workers), "--worker-class", "sync", "--bind", addr,
                          "--log-level", "warning", "hello:application"] if gunicorn else None,
        "gunicorn gthread": [gunicorn, "--workers", str(workers), "--worker-class", "gthread", "--threads", "4",
                             "--bind", addr, "--log-level", "warning", "hello:application"] if gunicorn else None,
        "waitress (1 proc, 4 threads)": [waitress, f"--listen={addr}", "--threads=4",
                                         "hello:application"] if waitress else None,
        "uWSGI http-socket": [uwsgi, "--http-socket", addr, *uwsgi_common] if uwsgi else None,
        "uWSGI http11-socket": [uwsgi, "--http11-socket", addr, *uwsgi_common] if uwsgi else None,
    }


def wait_ready(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not become ready")


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def worker_rss(pid: int) -> float:
    """Mean RSS of the worker processes (the children), or of the process itself if it has none."""
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True,
                              check=False).stdout.split()
    pids = [int(c) for c in children] or [pid]
    values = [rss_kib(p) for p in pids]
    return sum(values) / len(values) / 1024


def probe_new_client(port: int, tries: int = 5, timeout: float = 2.0) -> float:
    """Worst time for a new keep-alive client to get a response while wrk holds its connections.

    A server that dedicates a worker to each keep-alive connection cannot answer it until
    one of wrk's connections goes away; that shows up here as the timeout (in ms).
    """
    worst = 0.0
    for _ in range(tries):
        start = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: probe\r\n\r\n")
                ok = sock.recv(100).startswith(b"HTTP/1.1 200")
        except OSError:
            ok = False
        elapsed = time.monotonic() - start if ok else timeout
        worst = max(worst, elapsed)
        time.sleep(0.1)
    return worst * 1000


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    match = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", output)
    p99 = float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": rps,
        "p99_ms": p99,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def run_one(name: str, cmd: list[str], port: int, args: argparse.Namespace) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(HERE)]))
    proc = subprocess.Popen(cmd, cwd=str(HERE), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_ready(port)
        url = f"http://127.0.0.1:{port}/"
        subprocess.run(["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", "2s", url],
                       capture_output=True, check=True)  # warm-up
        wrk = subprocess.Popen(["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d",
                                f"{args.duration}s", "--latency", url], stdout=subprocess.PIPE, text=True)
        time.sleep(min(2.0, args.duration / 3))
        probe = probe_new_client(port)
        out, _ = wrk.communicate()
        result = parse_wrk(out)
        result["probe_ms"] = probe
        result["rss_mib"] = worker_rss(proc.pid)
        return result
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds of wrk load per server per round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", action="append", help="run only servers whose name contains this")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is required (apt-get install wrk)", file=sys.stderr)
        return 1

    names = [n for n, c in commands(0, args.workers).items() if c is not None]
    if args.only:
        names = [n for n in names if any(o in n for o in args.only)]
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for round_no in range(1, args.rounds + 1):
        for name in names:
            port = free_port()
            cmd = commands(port, args.workers)[name]
            assert cmd is not None
            result = run_one(name, cmd, port, args)
            results[name].append(result)
            print(f"round {round_no} {name:30s} {result['rps']:10.0f} req/s  p99 {result['p99_ms']:7.2f} ms  "
                  f"non-2xx {result['non2xx']}  errors {result['socket_errors']}  "
                  f"probe {result['probe_ms']:.0f} ms", file=sys.stderr, flush=True)

    summary = {}
    for name, runs in results.items():
        summary[name] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "rss_mib": statistics.median(r["rss_mib"] for r in runs),
            "probe_ms": max(r["probe_ms"] for r in runs),
            "non2xx": sum(r["non2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs),
        }
    base = summary.get("headrace", {}).get("rps")
    for name, runs in results.items():  # same-round ratios cancel most of a noisy machine's drift
        if "headrace" in results:
            pairs = zip(results["headrace"], runs, strict=True)
            summary[name]["round_ratio"] = statistics.median(h["rps"] / r["rps"] for h, r in pairs)
    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} interleaved rounds, "
          f"{args.workers} workers, medians\n")
    print("| server | req/s (median) | headrace ÷ server, medians | headrace ÷ server, per round (median) "
          "| p99 latency | RSS per worker | non-2xx | socket errors | new client under load (worst) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in summary.items():
        ratio = f"{base / s['rps']:.2f}x" if base else "-"
        round_ratio = f"{s['round_ratio']:.2f}x" if "round_ratio" in s else "-"
        probe = f"{s['probe_ms']:.0f} ms" if s["probe_ms"] < 2000 else "no answer in 2 s"
        print(f"| {name} | {s['rps']:.0f} | {ratio} | {round_ratio} | {s['p99_ms']:.2f} ms | "
              f"{s['rss_mib']:.1f} MiB | {s['non2xx']} | {s['socket_errors']} | {probe} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": results, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
