"""Interleaved A/B of req/s and CPU per request: each checkout's uvicorn pinned to CPU 1,
shared/bench's fake upstream and wrk on CPU 0, the checkouts' order alternating by round.
CPU per request (the server's user + system time over the requests wrk completed) varies
less than req/s on a shared machine.

usage: cpu_per_request.py --key KEY CHECKOUT=REDIS_DB ... [--rounds 6] [--secs 6]
       [--conc 64] [--latency 0] [--database nexeon_bench]
Each checkout gets its own Redis database (its money layout may differ); KEY is a key with
credit in the database (as bench/ab/README.md makes them)."""
import os, re, subprocess, sys, time, statistics, urllib.request, argparse
ap = argparse.ArgumentParser(); ap.add_argument("variants", nargs="+"); ap.add_argument("--rounds", type=int, default=6)
ap.add_argument("--secs", type=int, default=6); ap.add_argument("--conc", type=int, default=64); ap.add_argument("--latency", default="0")
ap.add_argument("--key", required=True); ap.add_argument("--database", default="nexeon_bench")
a = ap.parse_args()
KEY = a.key
HERE = os.path.dirname(os.path.abspath(__file__)); PROJECT = os.path.dirname(os.path.dirname(HERE))
BENCH = os.environ.get("BENCH_DIR", os.path.join(os.path.dirname(PROJECT), "shared", "bench"))
BODY = "/tmp/ab-chat.json"  # the chat body ab.py writes
procs = []
def env(db): return dict(os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{a.database}", REDIS_URL=f"redis://127.0.0.1:6379/{db}",
    SECRET_KEY="bench", LOG_LEVEL="WARNING", OPENAI_BASE_URL="http://127.0.0.1:18100/v1", OPENAI_API_KEY="sk-bench")
procs.append(subprocess.Popen(["taskset","-c","0","/tmp/bench-venv/bin/python",os.path.join(BENCH, "fake_upstream.py"),"--port","18100","--latency-ms",a.latency], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
servers = []
for i, v in enumerate(a.variants):
    d, db = v.split("=")
    port = 8201 + i
    p = subprocess.Popen(["taskset","-c","1",os.path.join(PROJECT, ".venv/bin/uvicorn"),"nexeon.asgi:application","--host","127.0.0.1","--port",str(port),"--loop","uvloop",
        "--http","apigateway.server:GatewayHttpProtocol","--no-access-log","--lifespan","on"], cwd=d, env=env(db), stdout=subprocess.DEVNULL, stderr=open("/tmp/cpu_ab.log","a"))
    procs.append(p); servers.append((d, port, p))
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")",1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def wrk(port, secs):
    out = subprocess.run(["taskset","-c","0","wrk","-t1",f"-c{a.conc}",f"-d{secs}s","--timeout=10s","-s",os.path.join(BENCH, "post.lua"),
        f"http://127.0.0.1:{port}/v1/chat/completions","--",BODY,KEY], capture_output=True, text=True).stdout
    n = int(re.search(r"(\d+) requests in", out).group(1)); bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad: print("NON-2xx", bad.group(1), file=sys.stderr)
    return n, float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
try:
    for d, port, p in servers:
        for _ in range(200):
            try: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1); break
            except Exception: time.sleep(0.3)
        wrk(port, 3)
    res = {d: [] for d, _, _ in servers}; rps = {d: [] for d, _, _ in servers}
    for r in range(a.rounds):
        order = servers if r % 2 == 0 else servers[::-1]
        for d, port, p in order:
            c0 = cpu(p.pid); n, rs = wrk(port, a.secs); c1 = cpu(p.pid)
            res[d].append(1e6 * (c1 - c0) / n); rps[d].append(rs)
        print("round", r, {d: (round(res[d][-1],1), rps[d][-1]) for d in res}, flush=True)
    for d in res:
        print(f"{d}: CPU/request median {statistics.median(res[d]):.1f} us (all {[round(x,1) for x in res[d]]}); req/s median {statistics.median(rps[d]):.0f}")
finally:
    for p in procs: p.terminate()
    for p in procs: p.wait()
