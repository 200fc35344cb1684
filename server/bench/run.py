#!/usr/bin/env python3
"""Side-by-side WSGI server benchmark on loopback with wrk: keep-alive, new connections, Apache.

Serves the seed's hello-world app with headrace, gunicorn (sync and gthread), waitress and
uWSGI, two workers each where the server has workers, and loads each with wrk.  Rounds are
interleaved (every server once per round) so a noisy machine hurts all servers alike; the
table shows medians and ratios.  Only loopback traffic, bounded by --duration and --rounds.

    python bench/run.py --rounds 3 --duration 8            # keep-alive only (wrk -t2 -c64)
    python bench/run.py --close --rounds 3 --duration 6    # keep-alive and a new connection
                                                           # per request (wrk -t1 -c32)
    python bench/run.py --apache --rounds 3 --duration 6   # through Apache: pooled backend
                                                           # connections vs disablereuse=On

``--close`` sends ``Connection: close`` on every request and counts the TCP connections the
kernel accepted during the run (``PassiveOpens`` in /proc/net/snmp): the "new connections
per request" column must be about 1.00 for a server to count as closing (uWSGI's
``--http11-socket`` keeps the connection despite the header, so it is reported but is no
reference for that mode).

Servers whose command is not installed are skipped.  Run from a venv that has gunicorn,
waitress and uwsgi installed (``pip install gunicorn waitress uwsgi``); ``--apache`` needs
``/usr/sbin/apache2`` with mod_proxy_http and runs it from a throwaway config in a temporary
directory (loopback port, unix socket to headrace), stopped afterwards.
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
import tempfile
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
        # the configuration of the close-per-request measurement
        "uWSGI http-socket 4 threads": [uwsgi, "--http-socket", addr, "--threads", "4",
                                        *uwsgi_common] if uwsgi else None,
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


def passive_opens() -> int:
    """TCP connections this network namespace has accepted so far (all listeners)."""
    lines = Path("/proc/net/snmp").read_text().splitlines()
    tcp = [line.split() for line in lines if line.startswith("Tcp:")]
    return int(tcp[1][tcp[0].index("PassiveOpens")])


def parse_wrk(output: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = re.search(r"(\d+) requests in", output)
    match = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", output)
    p99 = float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": rps,
        "requests": int(total.group(1)) if total else 0,
        "p99_ms": p99,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def wrk_cmd(url: str, args: argparse.Namespace, duration: int, close: bool) -> list[str]:
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{duration}s", "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    return [*cmd, url]


def load(port: int, args: argparse.Namespace, close: bool, probe: bool) -> dict[str, float]:
    """Warm up, then run wrk against ``port``; counts the TCP connections accepted meanwhile."""
    url = f"http://127.0.0.1:{port}/"
    subprocess.run(wrk_cmd(url, args, 2, close), capture_output=True, check=True)  # warm-up
    opens = passive_opens()
    wrk = subprocess.Popen(wrk_cmd(url, args, args.duration, close), stdout=subprocess.PIPE, text=True)
    probe_ms = 0.0
    if probe:
        time.sleep(min(2.0, args.duration / 3))
        probe_ms = probe_new_client(port)
    out, _ = wrk.communicate()
    result = parse_wrk(out)
    opened = passive_opens() - opens - (5 if probe else 0)
    result["conns_per_request"] = opened / result["requests"] if result["requests"] else float("nan")
    result["probe_ms"] = probe_ms
    return result


def start_server(cmd: list[str]) -> subprocess.Popen:
    """Start a server from ``bench/`` with this checkout's headrace and the hello app importable, in a
    session of its own so :func:`stop` can signal all its processes."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(HERE)]))
    return subprocess.Popen(cmd, cwd=str(HERE), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def run_one(name: str, cmd: list[str], port: int, args: argparse.Namespace, close: bool) -> dict[str, float]:
    proc = start_server(cmd)
    try:
        wait_ready(port)
        result = load(port, args, close, probe=not close)
        result["rss_mib"] = worker_rss(proc.pid)
        return result
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


APACHE_CONF = """\
ServerRoot {root}
DefaultRuntimeDir {root}
PidFile {root}/httpd.pid
ErrorLog {root}/error.log
LogLevel warn
Mutex file:{root}
Listen 127.0.0.1:{port}
ServerName localhost
User www-data
Group www-data
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so
StartServers 2
ServerLimit 2
ThreadsPerChild 32
MaxRequestWorkers 64
KeepAlive On
ProxyPass / unix:{sock}|http://localhost/ {params}
"""


def group_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its children (Apache's or headrace's
    worker processes, each with all its threads)."""
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True,
                              check=False).stdout.split()
    ticks = 0
    for proc in [pid, *map(int, children)]:
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def run_apache(reuse: bool, args: argparse.Namespace) -> dict[str, float]:
    """headrace on a unix socket behind Apache's mod_proxy_http, pooled or ``disablereuse=On``."""
    with tempfile.TemporaryDirectory(prefix="headrace-bench-apache-") as root:
        os.chmod(root, 0o755)  # Apache's children run as www-data and must reach the socket
        sock_path = f"{root}/headrace.sock"
        port = free_port()
        backend = start_server(
            [sys.executable, "-m", "headrace", "--workers", str(args.workers), "--bind", f"unix:{sock_path}",
             "--log-level", "warning", "hello:application"])
        apache = None
        try:
            deadline = time.monotonic() + 15
            while not os.path.exists(sock_path):
                if time.monotonic() > deadline:
                    raise RuntimeError("headrace did not bind its unix socket")
                time.sleep(0.05)
            os.chmod(sock_path, 0o666)
            conf = Path(root) / "httpd.conf"
            conf.write_text(APACHE_CONF.format(root=root, port=port, sock=sock_path,
                                               params="" if reuse else "disablereuse=On"))
            apache = subprocess.Popen(["/usr/sbin/apache2", "-f", str(conf), "-DFOREGROUND"], cwd=root,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            wait_ready(port)
            url = f"http://127.0.0.1:{port}/"
            subprocess.run(wrk_cmd(url, args, 2, False), capture_output=True, check=True)  # warm-up
            cpu = group_cpu(apache.pid), group_cpu(backend.pid)
            out = subprocess.run(wrk_cmd(url, args, args.duration, False), capture_output=True, text=True,
                                 check=True).stdout
            result = parse_wrk(out)
            # Where the CPU goes per request: if disablereuse costs mostly Apache time, the backend
            # is not what limits the ratio.
            result["apache_us"] = (group_cpu(apache.pid) - cpu[0]) / result["requests"] * 1e6
            result["backend_us"] = (group_cpu(backend.pid) - cpu[1]) / result["requests"] * 1e6
            result["conns_per_request"] = float("nan")  # unix socket: no TCP counter to read
            result["probe_ms"] = 0.0
            result["rss_mib"] = worker_rss(backend.pid)
            return result
        finally:
            if apache is not None:
                stop(apache)
            stop(backend)


def summarise(results: dict[str, list[dict[str, float]]], base_name: str) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        summary[name] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "rss_mib": statistics.median(r["rss_mib"] for r in runs),
            "probe_ms": max(r["probe_ms"] for r in runs),
            "non2xx": sum(r["non2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs),
            "conns_per_request": statistics.median(r["conns_per_request"] for r in runs),
        }
        if base_name in results:  # same-round ratios cancel most of a noisy machine's drift
            pairs = zip(results[base_name], runs, strict=True)
            summary[name]["round_ratio"] = statistics.median(h["rps"] / r["rps"] for h, r in pairs)
    return summary


def print_table(title: str, summary: dict[str, dict[str, float]], base_name: str, probe: bool) -> None:
    base = summary.get(base_name, {}).get("rps")
    print(f"\n{title}\n")
    print(f"| server | req/s (median) | {base_name} ÷ server, medians | {base_name} ÷ server, per round (median) "
          "| p99 latency | new connections per request | RSS per worker | non-2xx | socket errors |"
          + (" new client under load (worst) |" if probe else ""))
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if probe else ""))
    for name, s in summary.items():
        ratio = f"{base / s['rps']:.2f}x" if base else "-"
        round_ratio = f"{s['round_ratio']:.2f}x" if "round_ratio" in s else "-"
        line = (f"| {name} | {s['rps']:.0f} | {ratio} | {round_ratio} | {s['p99_ms']:.2f} ms | "
                f"{s['conns_per_request']:.3f} | {s['rss_mib']:.1f} MiB | {s['non2xx']} | {s['socket_errors']} |")
        if probe:
            line += f" {s['probe_ms']:.0f} ms |" if s["probe_ms"] < 2000 else " no answer in 2 s |"
        print(line)


def target(label: str, summary: dict[str, dict[str, float]], base_name: str, refs: list[str],
           goal: float) -> str:
    """One line: headrace's ratio against the best of ``refs`` (medians and per-round), met or not."""
    refs = [r for r in refs if r in summary]
    if base_name not in summary or not refs:
        return f"- {label}: not measured"
    best = max(refs, key=lambda r: summary[r]["rps"])
    medians = summary[base_name]["rps"] / summary[best]["rps"]
    per_round = summary[best]["round_ratio"]
    verdict = "met" if min(medians, per_round) >= goal else "NOT met"
    return (f"- {label}: {medians:.2f}x ({per_round:.2f}x per round) against {best} — target "
            f"≥ {goal}x {verdict}")

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds of wrk load per server per round")
    parser.add_argument("--connections", type=int, help="wrk connections (default 64, 32 with --close/--apache)")
    parser.add_argument("--threads", type=int, help="wrk threads (default 2, 1 with --close/--apache)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--close", action="store_true",
                        help="also measure a new connection per request (Connection: close)")
    parser.add_argument("--close-only", action="store_true", help="with --close: skip the keep-alive runs")
    parser.add_argument("--apache", action="store_true",
                        help="measure headrace behind Apache instead: pooled vs disablereuse=On")
    parser.add_argument("--only", action="append", help="run only servers whose name contains this")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    paired = args.close or args.apache
    args.connections = args.connections or (32 if paired else 64)
    args.threads = args.threads or (1 if paired else 2)
    if not shutil.which("wrk"):
        print("wrk is required (apt-get install wrk)", file=sys.stderr)
        return 1
    with open("/proc/loadavg") as handle:
        print(f"load average before: {handle.read().split()[:3]}", file=sys.stderr)

    if args.apache:
        return apache_main(args)
    names = [n for n, c in commands(0, args.workers).items() if c is not None]
    if args.only:
        names = [n for n in names if any(o in n for o in args.only)]
    modes = ["keep-alive", "close"] if args.close else ["keep-alive"]
    if args.close and args.close_only:
        modes = ["close"]
    results: dict[str, dict[str, list[dict[str, float]]]] = {m: {n: [] for n in names} for m in modes}
    for round_no in range(1, args.rounds + 1):
        for mode in modes:
            for name in names:
                port = free_port()
                cmd = commands(port, args.workers)[name]
                assert cmd is not None
                result = run_one(name, cmd, port, args, close=mode == "close")
                results[mode][name].append(result)
                print(f"round {round_no} {mode:10s} {name:30s} {result['rps']:10.0f} req/s  "
                      f"p99 {result['p99_ms']:7.2f} ms  conns/req {result['conns_per_request']:.3f}  "
                      f"non-2xx {result['non2xx']}  errors {result['socket_errors']}", file=sys.stderr, flush=True)
    with open("/proc/loadavg") as handle:
        print(f"load average after: {handle.read().split()[:3]}", file=sys.stderr)

    summaries = {mode: summarise(results[mode], "headrace") for mode in modes}
    for mode in modes:
        what = "Connection: close on every request" if mode == "close" else "keep-alive"
        print_table(f"{mode}: wrk -t{args.threads} -c{args.connections} -d{args.duration}s ({what}), "
                    f"{args.rounds} interleaved rounds, {args.workers} workers, medians",
                    summaries[mode], "headrace", probe=mode == "keep-alive")
    print("\nTargets (headrace ÷ reference):")
    if "keep-alive" in summaries:
        print(target("keep-alive vs the better uWSGI HTTP mode", summaries["keep-alive"], "headrace",
                     ["uWSGI http-socket", "uWSGI http-socket 4 threads", "uWSGI http11-socket"], 1.2))
    if "close" in summaries:
        close = summaries["close"]
        closing = [n for n, s in close.items() if n != "headrace" and s["conns_per_request"] >= 0.95]
        not_closing = [n for n, s in close.items() if s["conns_per_request"] < 0.95]
        if not_closing:
            print(f"- kept connections open despite Connection: close (no reference): {', '.join(not_closing)}")
        print(target("close vs uWSGI --http-socket", close, "headrace",
                     [n for n in closing if n.startswith("uWSGI http-socket")], 1.0))
        print(target("close vs gunicorn sync", close, "headrace",
                     [n for n in closing if n == "gunicorn sync"], 2.0))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": results, "summary": summaries},
                                              indent=2))
    return 0


def apache_main(args: argparse.Namespace) -> int:
    if not os.path.exists("/usr/sbin/apache2"):
        print("--apache needs /usr/sbin/apache2", file=sys.stderr)
        return 1
    names = {"Apache pooled": True, "Apache disablereuse=On": False}
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for round_no in range(1, args.rounds + 1):
        for name, reuse in names.items():
            result = run_apache(reuse, args)
            results[name].append(result)
            print(f"round {round_no} {name:30s} {result['rps']:10.0f} req/s  p99 {result['p99_ms']:7.2f} ms  "
                  f"Apache {result['apache_us']:.0f} us/req  headrace {result['backend_us']:.0f} us/req  "
                  f"non-2xx {result['non2xx']}  errors {result['socket_errors']}", file=sys.stderr, flush=True)
    with open("/proc/loadavg") as handle:
        print(f"load average after: {handle.read().split()[:3]}", file=sys.stderr)
    summary = summarise(results, "Apache disablereuse=On")
    print_table(f"headrace ({args.workers} workers, unix socket) behind Apache mpm_event, wrk -t{args.threads} "
                f"-c{args.connections} -d{args.duration}s keep-alive to Apache, {args.rounds} interleaved rounds",
                summary, "Apache disablereuse=On", probe=False)
    print("\nCPU per request (medians): " + "; ".join(
        f"{name}: Apache {statistics.median(r['apache_us'] for r in runs):.0f} µs, headrace "
        f"{statistics.median(r['backend_us'] for r in runs):.0f} µs" for name, runs in results.items()))
    print("\nTargets:")
    print(target("disablereuse=On vs pooled", summary, "Apache disablereuse=On", ["Apache pooled"], 0.8))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": results, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
