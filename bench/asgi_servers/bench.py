#!/usr/bin/env python3
"""ASGI server benchmark driver. Servers pinned to CPU 1, wrk pinned to CPU 0."""

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import time

ROOT = "/tmp/asgi-bench"
VENV = f"{ROOT}/.venv/bin"
LOGS = f"{ROOT}/logs"
os.makedirs(LOGS, exist_ok=True)
ENV = dict(
    os.environ,
    PYTHONPATH=ROOT,
    DJANGO_SETTINGS_MODULE="benchproj.settings",
    PATH=f"{VENV}:{os.environ['PATH']}",
    PYTHONDONTWRITEBYTECODE="1",
)

APPS = {"django": "benchproj.asgi:application", "bare": "bare_asgi:application"}


def server_cmd(server, app, port):
    target = APPS[app]
    if server == "uvicorn-uvloop-httptools":
        return [
            f"{VENV}/uvicorn",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if server == "uvicorn-h11-asyncio":
        return [
            f"{VENV}/uvicorn",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "asyncio",
            "--http",
            "h11",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if server == "granian":
        return [
            f"{VENV}/granian",
            "--interface",
            "asgi",
            "--loop",
            "uvloop",
            "--workers",
            "1",
            "--no-ws",
            "--no-access-log",
            "--log-level",
            "warning",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            target,
        ]
    if server == "daphne":
        return [f"{VENV}/daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", target]
    raise ValueError(server)


def start(server, app, port, tag):
    cmd = ["taskset", "-c", "1"] + server_cmd(server, app, port)
    log = open(f"{LOGS}/{server}_{app}_{tag}.log", "w")
    t0 = time.perf_counter()
    p = subprocess.Popen(
        cmd, cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return p, t0, cmd


def probe(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = s.recv(64)
            return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def wait_200(port, t0, timeout=30.0):
    while time.perf_counter() - t0 < timeout:
        if probe(port):
            return time.perf_counter() - t0
        time.sleep(0.005)
    raise RuntimeError(f"no 200 on port {port} within {timeout}s")


def descendants(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open(f"/proc/{d}/stat").read()
                ppid = int(st.rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except OSError:
                pass
    out, stack = [], [pid]
    while stack:
        x = stack.pop()
        out.append(x)
        stack.extend(kids.get(x, []))
    return out


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_name(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")[:80]
    except OSError:
        return "?"


def stop(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)  # by PID only
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # our own session/group, started above
            p.wait(timeout=5)
    # make sure no child of ours survived (granian workers)
    try:
        os.killpg(p.pid, 0)
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def lat_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    return float(m.group(1)) * UNIT[m.group(2)]


def wrk(port, conc, dur):
    cmd = [
        "timeout",
        str(dur + 20),
        "taskset",
        "-c",
        "0",
        "wrk",
        "-t1",
        f"-c{conc}",
        f"-d{dur}s",
        "--latency",
        f"http://127.0.0.1:{port}/ping",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    r = {"raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else None
    for q in ("50", "99"):
        m = re.search(rf"^\s+{q}%\s+(\S+)", out, re.M)
        r[f"p{q}"] = lat_ms(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in", out)
    r["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    r["sock_err"] = m.group(1) if m else ""
    return r


MATRIX = [
    ("uvicorn-uvloop-httptools", "django"),
    ("uvicorn-uvloop-httptools", "bare"),
    ("uvicorn-h11-asyncio", "django"),
    ("granian", "django"),
    ("granian", "bare"),
    ("daphne", "django"),
    ("daphne", "bare"),
]
CONCS = [1, 16, 64]
DUR, WARM, REPS = 8, 2, 2


def main():
    results = []
    port = 18100
    for server, app in MATRIX:
        # startup time: 3 cold starts, median
        starts = []
        for i in range(3):
            port += 1
            p, t0, cmd = start(server, app, port, f"startup{i}")
            try:
                starts.append(wait_200(port, t0))
            finally:
                stop(p)
            time.sleep(0.5)
        port += 1
        p, t0, cmd = start(server, app, port, "load")
        wait_200(port, t0)
        procs = descendants(p.pid)
        print(
            f"== {server}/{app} startup={statistics.median(starts):.3f}s procs={[(x, proc_name(x)) for x in procs]}",
            flush=True,
        )
        cells = []
        try:
            for c in CONCS:
                wrk(port, c, WARM)
                reps = [wrk(port, c, DUR) for _ in range(REPS)]
                cell = {
                    "conc": c,
                    "reps": [{k: v for k, v in r.items() if k != "raw"} for r in reps],
                    "raw": [r["raw"] for r in reps],
                }
                cells.append(cell)
                print(
                    f"   c={c} rps={[r['rps'] for r in reps]} p50={[r['p50'] for r in reps]} p99={[r['p99'] for r in reps]} non2xx={[r['non2xx'] for r in reps]} sock={[r['sock_err'] for r in reps]}",
                    flush=True,
                )
            time.sleep(0.5)
            pids = descendants(p.pid)
            rss = {x: rss_kib(x) for x in pids}
            alive = p.poll() is None
        finally:
            stop(p)
        results.append(
            {
                "server": server,
                "app": app,
                "cmd": cmd,
                "startup_s": starts,
                "rss_kib": {
                    f"{x} {proc_name(x) if False else ''}".strip(): v for x, v in rss.items()
                },
                "rss_procs": [proc_name(x) for x in pids],
                "alive_after_load": alive,
                "cells": cells,
            }
        )
        print(f"   rss_kib={rss} alive={alive}", flush=True)
        json.dump(results, open(f"{ROOT}/results.json", "w"), indent=1)


if __name__ == "__main__":
    main()
