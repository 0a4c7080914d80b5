"""Interleaved A/B of gateway variants in one run (see README.md here).

Each variant is a checkout (a git worktree) served by uvicorn, or `DIR::SCRIPT[@K=V;K=V]`:
a Python script run in DIR with PORT and the given variables set. All of them run side by
side pinned to CPU 1; bench/compare's fake upstream and wrk run on CPU 0. Each round runs
direct, then every variant (order reversed on odd rounds), per concurrency; the result is
the median over rounds of (variant p50 - that round's direct p50).

usage: ab.py --dirs A B [--concs 1,16] [--rounds 4] [--secs 6] [--latency 50]
needs: the bench database and key (`make bench` makes them; pass --key) and wrk.
NEXEON_BENCH_DATABASE_URL / NEXEON_BENCH_REDIS_URL name the bench database as for make bench.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--dirs", nargs="+", required=True)
ap.add_argument("--concs", default="1,16")
ap.add_argument("--rounds", type=int, default=4)
ap.add_argument("--secs", type=int, default=6)
ap.add_argument("--latency", type=float, default=50)
ap.add_argument("--env", nargs="*", default=[])
ap.add_argument("--key", default=os.environ.get("NEXEON_BENCH_KEY", ""))
ap.add_argument("--body", default=None, help="chat request body (default: the harness's)")
ap.add_argument("--log", default="/tmp/ab-servers.log")
ap.add_argument(
    "--paired",
    type=int,
    default=0,
    help="instead of wrk rounds: N request-by-request rounds at c=1 (paired_client.py)",
)
a = ap.parse_args()
HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(os.path.dirname(HERE))
BENCH = os.path.join(os.path.dirname(HERE), "compare")
KEY = a.key
if not KEY:
    raise SystemExit("pass --key nex-sk-... (a key in the bench database with credit)")
BODY = a.body or "/tmp/ab-chat.json"
if not a.body:
    with open(BODY, "w") as f:
        json.dump(
            {
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {
                        "role": "user",
                        "content": "In three sentences, explain what an API gateway for LLM "
                        "providers does and why teams use one.",
                    },
                ],
                "temperature": 0.7,
                "max_tokens": 256,
            },
            f,
        )
ENV = dict(
    os.environ,
    DATABASE_URL=os.environ.get(
        "NEXEON_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nexeon_bench"
    ),
    REDIS_URL=os.environ.get("NEXEON_BENCH_REDIS_URL", "redis://127.0.0.1:6379/2"),
    SECRET_KEY="bench-only-secret",  # noqa: S106 (a throwaway local server's)
    LOG_LEVEL="WARNING",
    OPENAI_BASE_URL="http://127.0.0.1:18000/v1",
    OPENAI_API_KEY="sk-bench",
)
for kv in a.env:
    k, v = kv.split("=", 1)
    ENV[k] = v
procs: list[subprocess.Popen[bytes]] = []
server_log = open(a.log, "a")  # noqa: SIM115 (shared by every server until the end)


def start(
    cmd: list[str], cpu: str, cwd: str | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(
        ["taskset", "-c", cpu, *cmd],
        cwd=cwd,
        env=env or ENV,
        stdout=subprocess.DEVNULL,
        stderr=server_log,
    )
    procs.append(p)
    return p


def wait_ok(url: str, t: float = 30) -> None:
    end = time.time() + t
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception as e:
            if hasattr(e, "code"):
                return
            time.sleep(0.1)
    raise SystemExit("not up: " + url)


try:
    start(
        [
            sys.executable,
            os.path.join(BENCH, "fake_upstream.py"),
            "--port",
            "18000",
            "--latency-ms",
            str(a.latency),
        ],
        "0",
    )
    wait_ok("http://127.0.0.1:18000/v1/models")
    ports = {}
    for i, d in enumerate(a.dirs):
        port = 8101 + i
        if "::" in d:
            dd, script = d.split("::", 1)
            envs = dict(ENV, PORT=str(port))
            if "@" in script:
                script, extra = script.split("@", 1)
                for kv in extra.split(";"):
                    k, v = kv.split("=", 1)
                    envs[k] = v
            start([os.path.join(PROJECT, ".venv/bin/python"), script], "1", cwd=dd, env=envs)
        else:
            start(
                [
                    f"{d}/.venv/bin/uvicorn"
                    if os.path.exists(f"{d}/.venv")
                    else os.path.join(PROJECT, ".venv/bin/uvicorn"),
                    "nexeon.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--loop",
                    "uvloop",
                    "--http",
                    "apigateway.server:GatewayHttpProtocol",
                    "--no-access-log",
                    "--lifespan",
                    "on",
                ],
                "1",
                cwd=d,
            )
        ports[d] = port
    for port in ports.values():
        wait_ok(f"http://127.0.0.1:{port}/v1/openapi.json")
    time.sleep(7)

    def wrk(url: str, c: int, secs: int, key: str = KEY) -> tuple[float, float, float, int]:
        out = subprocess.run(
            [
                "taskset",
                "-c",
                "0",
                "wrk",
                "-t1",
                f"-c{c}",
                f"-d{secs}s",
                "--timeout=10s",
                "-s",
                os.path.join(BENCH, "post.lua"),
                url,
                "--",
                BODY,
                key,
            ],
            capture_output=True,
            text=True,
        ).stdout
        m = re.search(r"WRKJSON (\{.*\})", out)
        if m is None:
            raise SystemExit(f"no wrk output for {url}: {out[-300:]}")
        r = json.loads(m.group(1))
        bad = r["err_status"] + r["err_connect"] + r["err_read"] + r["err_timeout"]
        return r["p50_us"] / 1000, r["p99_us"] / 1000, r["requests"] / (r["duration_us"] / 1e6), bad

    for port in ports.values():  # prime
        wrk(f"http://127.0.0.1:{port}/v1/chat/completions", 16, 3)
    names = ["direct", *a.dirs]
    urls = {"direct": "http://127.0.0.1:18000/v1/chat/completions"}
    urls.update({d: f"http://127.0.0.1:{p}/v1/chat/completions" for d, p in ports.items()})
    res: dict[tuple[str, int], list[tuple[float, float, float, int]]] = {}
    if a.paired:
        out = subprocess.run(
            [
                "taskset",
                "-c",
                "0",
                sys.executable,
                os.path.join(HERE, "paired_client.py"),
                BODY,
                KEY,
                str(a.paired),
            ]
            + [f"{i}={urls[n]}" for i, n in enumerate(names)],
            capture_output=True,
            text=True,
        )
        print(out.stderr[-2000:], end="")
        for i, r in json.loads(out.stdout).items():
            n = names[int(i)]
            print(
                f"{n:30s} c=  1 paired x{a.paired}: p50 {r['p50']:.2f} p99 {r['p99']:.2f}  "
                f"+p50 (median of paired differences) {r['added_p50']:.2f}"
            )
    for r in range(0 if a.paired else a.rounds):
        for c in map(int, a.concs.split(",")):
            order = names if r % 2 == 0 else [names[0], *names[1:][::-1]]
            row = {}
            for n in order:
                row[n] = wrk(urls[n], c, a.secs)
            for n in a.dirs:
                res.setdefault((n, c), []).append(
                    (
                        row[n][0] - row["direct"][0],
                        row[n][1] - row["direct"][1],
                        row[n][2],
                        row[n][3],
                    )
                )
            print(
                f"round {r} c={c} "
                + " | ".join(
                    f"{n[-12:]}: p50 {row[n][0]:.2f} p99 {row[n][1]:.2f} "
                    f"rps {row[n][2]:.0f} bad {row[n][3]}"
                    for n in names
                ),
                flush=True,
            )
    for (n, c), v in sorted(res.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(
            f"{n:30s} c={c:3d} +p50 median {statistics.median(x[0] for x in v):.2f}  "
            f"+p99 median {statistics.median(x[1] for x in v):.2f}  "
            f"rps {statistics.median(x[2] for x in v):.0f}  +p50s {[round(x[0], 2) for x in v]}"
        )
finally:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except Exception:
            p.kill()
