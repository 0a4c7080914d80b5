#!/usr/bin/env python3
"""Side-by-side gateway overhead benchmark: direct-to-upstream vs LiteLLM vs a target.

`make bench` runs it through bench/compare_nexeon.sh, which installs LiteLLM and makes the
bench database and key. Starts fake_upstream.py, then per worker count LiteLLM and the
target (--target-cmd), each pinned to its own CPU, and loads each with wrk (post.lua) and
stream_bench.py. Everything listens on 127.0.0.1 only; every process this script starts is
stopped by PID. docs/performance.md says what is measured and how to read it.
"""

import argparse
import atexit
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
STARTED: list[subprocess.Popen[bytes]] = []  # processes this script started, to stop at exit

# One measured cell: a load client's JSON summary (wrk's post.lua or stream_bench.py) and
# what this script adds to it (column, workers, scenario, CPU use...); the run's meta alike.
Cell = dict[str, Any]
Meta = dict[str, Any]
# A table row: (upstream latency ms, scenario label, concurrency).
RowKey = tuple[float, str, int]


# ---------------------------------------------------------------- processes
def proc_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/*/stat ppid links)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if os.path.exists(f"/proc/{p}"):
            out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kib(pids: Iterable[int]) -> tuple[int, int]:
    """(sum VmRSS, sum VmHWM) in KiB over pids. VmHWM = each process's own peak."""
    rss = hwm = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
        except OSError:
            pass
    return rss, hwm


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """Stop a process we started and all its descendants, by PID."""
    if proc is None or proc.poll() is not None:
        # Exited: descendants that outlived it were reparented, out of reach from its PID.
        return
    pids = proc_tree(proc.pid)
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    t_end = time.time() + grace
    while time.time() < t_end and any(
        os.path.exists(f"/proc/{p}") and not _zombie(p) for p in pids
    ):
        time.sleep(0.1)
        proc.poll()
    for p in pids:
        if os.path.exists(f"/proc/{p}") and not _zombie(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    if proc in STARTED:
        STARTED.remove(proc)


def _zombie(p: int) -> bool:
    try:
        with open(f"/proc/{p}/stat") as f:
            st = f.read()
        return st[st.rindex(")") + 2] == "Z"
    except OSError:
        return True


def stop_all() -> None:
    for p in list(STARTED):
        stop(p, grace=5)


def start(
    cmd: str | list[str],
    cpus: str | None,
    env: dict[str, str] | None = None,
    log: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start cmd (a list, or a string for the shell) pinned to cpus, in its own session."""
    full = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    if cpus:
        full = ["taskset", "-c", cpus, *full]  # children inherit the affinity
    # the child keeps its own copy of the log file; ours closes on return
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    p = subprocess.Popen(
        full,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    STARTED.append(p)
    return p


def http(url: str, key: str | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(
    url: str, key: str | None, proc: subprocess.Popen[bytes] | None = None, timeout: float = 180.0
) -> float | None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            return None
        try:
            st, _ = http(url, key, timeout=2)
            if st == 200:
                return time.time() - t0
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.1)
    return None


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


# ---------------------------------------------------------------- load
def run_wrk(
    url: str,
    body_file: str,
    key: str,
    conc: int,
    duration: int,
    cpus: str | None,
    timeout_s: int = 10,
) -> Cell:
    cmd = [
        "wrk",
        "-t1",
        f"-c{conc}",
        f"-d{duration}s",
        f"--timeout={timeout_s}s",
        "-s",
        os.path.join(HERE, "post.lua"),
        url,
        "--",
        body_file,
        key or "",
    ]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    except subprocess.TimeoutExpired:
        return {"error": "wrk timed out"}
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[8:])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0
            r["errors"] = sum(
                r[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout")
            )
            return r
    return {"error": "no wrk output: " + out[-300:]}


def run_stream(
    url: str, body_file: str, key: str, conc: int, duration: int, cpus: str | None, py: str
) -> Cell:
    cmd = [
        py,
        os.path.join(HERE, "stream_bench.py"),
        "--url",
        url,
        "--body-file",
        body_file,
        "-c",
        str(conc),
        "-d",
        str(duration),
        "--timeout",
        "10",
    ]
    if key:
        cmd += ["--key", key]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired:
        return {"error": "stream client timed out"}
    for line in out.stdout.splitlines():
        if line.startswith("STREAMJSON "):
            r = json.loads(line[11:])
            r["errors"] = r["err_status"] + r["err_timeout"] + r["err_other"] + r["err_stream"]
            return r
    return {"error": "no stream output: " + (out.stdout + out.stderr)[-300:]}


def cpu_snapshot() -> tuple[float, float]:
    """(machine busy seconds, seconds used by this process + its reaped children)."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6]  # user nice system irq softirq (no idle, iowait, steal)
    t = os.times()
    return busy / hz, t.user + t.system + t.children_user + t.children_system


def tree_cpu_s(roots: Iterable[int | None]) -> float:
    """CPU seconds used so far by the live process trees under roots."""
    hz = os.sysconf("SC_CLK_TCK")
    tot = 0
    for r in roots:
        if not r:
            continue
        for p in proc_tree(r):
            try:
                with open(f"/proc/{p}/stat") as f:
                    st = f.read()
                fields = st[st.rindex(")") + 2 :].split()
                tot += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, ValueError, IndexError):
                pass
    return tot / hz


def wait_quiet(
    max_wait: float, roots: Iterable[int | None], threshold: float = 10.0, window: float = 0.5
) -> float:
    """Before a cell: wait (at most max_wait s) until processes that are not ours use
    < threshold % of a CPU for two windows in a row. Returns seconds waited."""
    t_start = time.time()
    calm = 0
    while time.time() - t_start < max_wait:
        m0, o0 = cpu_snapshot(), tree_cpu_s(roots)
        time.sleep(window)
        m1, o1 = cpu_snapshot(), tree_cpu_s(roots)
        foreign = 100 * ((m1[0] - m0[0]) - (m1[1] - m0[1]) - (o1 - o0)) / window
        calm = calm + 1 if foreign < threshold else 0
        if calm >= 2:
            break
    return round(time.time() - t_start, 1)


def calibrate(cpus: str | None, py: str) -> float | None:
    """ms for a fixed pure-Python loop on the gateway CPU: tracks how fast this VM is right now."""
    code = (
        "import time;t=time.perf_counter();s=0\n"
        "for i in range(3000000): s+=i*i\n"
        "print((time.perf_counter()-t)*1000)"
    )
    cmd = (["taskset", "-c", cpus] if cpus else []) + [py, "-c", code]
    try:
        return round(
            min(
                float(subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout)
                for _ in range(3)
            ),
            1,
        )
    except (ValueError, subprocess.TimeoutExpired):
        return None


# ---------------------------------------------------------------- bodies
def write_bodies(d: str, model: str, embed_model: str) -> dict[str, str]:
    msgs = [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": "In three sentences, explain what an API gateway for LLM "
            "providers does and why teams use one.",
        },
    ]
    chat = {"model": model, "messages": msgs, "temperature": 0.7, "max_tokens": 256}
    stream = dict(chat, stream=True, stream_options={"include_usage": True})
    emb = {"model": embed_model, "input": "The quick brown fox jumps over the lazy dog"}
    paths = {}
    for name, obj in (("chat", chat), ("stream", stream), ("embed", emb)):
        p = os.path.join(
            d, f"{name}-{model.replace('/', '_')}-{embed_model.replace('/', '_')}.json"
        )
        with open(p, "w") as f:
            json.dump(obj, f)
        paths[name] = p
    return paths


# ---------------------------------------------------------------- table
def fmt_ms(us: float | None) -> str:
    if us is None:
        return "-"
    ms = us / 1000.0
    return f"{ms:.2f}" if ms < 10 else (f"{ms:.1f}" if ms < 100 else f"{ms:.0f}")


def rows_for(
    results: list[Cell],
) -> dict[int, dict[RowKey, dict[str, list[tuple[str, Cell]]]]]:
    """The cells by workers, then row, then column: (metric, cell) for each repeat."""
    table: dict[int, dict[RowKey, dict[str, list[tuple[str, Cell]]]]] = {}
    for c in results:
        if "error" in c and "rps" not in c:
            continue
        for metric in ("ttft", "total") if c["scenario"] == "stream" else ("latency",):
            label = c["scenario"] if metric == "latency" else f"stream-{metric}"
            key = (c["latency_ms"], label, c["conc"])
            table.setdefault(c["workers"], {}).setdefault(key, {}).setdefault(
                c["column"], []
            ).append((metric, c))
    return table


def cell_vals(entries: list[tuple[str, Cell]]) -> dict[str, Any]:
    """Medians over the repeats of rps, p50 and p99 (us), with the rps range, errors and the
    repeats run under other load."""
    rps, p50, p99, err, busy = [], [], [], 0, 0
    for metric, c in entries:
        busy += 1 if c.get("foreign_cpu_pct", 0) >= 10 else 0
        pre = "ttft_" if metric == "ttft" else ""
        rps.append(c["rps"])
        p50.append(c[pre + "p50_us"])
        p99.append(c[pre + "p99_us"])
        err += c.get("errors", 0)
    med = statistics.median
    return {
        "rps": med(rps),
        "p50": med(p50),
        "p99": med(p99),
        "n": len(rps),
        "errors": err,
        "busy": busy,
        "rps_min": min(rps),
        "rps_max": max(rps),
    }


def render(results: list[Cell], meta: Meta, columns: list[str]) -> str:
    lines = []
    table = rows_for(results)
    direct_by_key = table.get(0, {})
    gw_cols = [c for c in columns if c != "direct"]
    for w in sorted(k for k in table if k != 0):
        rows = table[w]
        lines.append("")
        lines.append(f"### workers={w}  ({meta['pinning'].get(str(w), '')})")
        hdr = ["upstream", "scenario", "conc", "direct rps", "p50", "p99"]
        for g in gw_cols:
            hdr += [f"{g} rps", "p50", "p99", "+p50", "+p99"]
        if "litellm" in gw_cols and len(gw_cols) > 1:
            for g in gw_cols:
                if g != "litellm":
                    hdr += [f"{g}/litellm rps", f"{g}/litellm +p50"]
        lines.append("| " + " | ".join(hdr) + " |")
        lines.append("|" + "---|" * len(hdr))
        keys = sorted(
            set(rows) | set(k for k in direct_by_key),
            key=lambda k: (
                k[0],
                {"chat": 0, "stream-ttft": 1, "stream-total": 2, "embed": 3}.get(k[1], 9),
                k[2],
            ),
        )
        for k in keys:
            d = direct_by_key.get(k, {}).get("direct")
            gw = rows.get(k, {})
            if not any(g in gw for g in gw_cols):
                continue
            dv = cell_vals(d) if d else None
            row = [f"{k[0]:g} ms", k[1], str(k[2])]
            row += (
                [f"{dv['rps']:.0f}", fmt_ms(dv["p50"]), fmt_ms(dv["p99"])]
                if dv
                else ["-", "-", "-"]
            )
            vals = {}
            for g in gw_cols:
                if g in gw:
                    v = cell_vals(gw[g])
                    vals[g] = v
                    add50 = v["p50"] - dv["p50"] if dv else None
                    add99 = v["p99"] - dv["p99"] if dv else None
                    v["add50"] = add50
                    rps_s = (
                        f"{v['rps']:.0f}"
                        + (f" ({v['rps_min']:.0f}-{v['rps_max']:.0f})" if v["n"] > 1 else "")
                        + (f" ({v['errors']} err)" if v["errors"] else "")
                        + ("*" * min(v["busy"], 3))
                    )
                    row += [rps_s, fmt_ms(v["p50"]), fmt_ms(v["p99"]), fmt_ms(add50), fmt_ms(add99)]
                else:
                    row += ["-"] * 5
            if "litellm" in gw_cols and len(gw_cols) > 1:
                for g in gw_cols:
                    if g == "litellm":
                        continue
                    if g in vals and "litellm" in vals and vals["litellm"]["rps"]:
                        r1 = vals[g]["rps"] / vals["litellm"]["rps"]
                        a_l, a_g = vals["litellm"].get("add50"), vals[g].get("add50")
                        r2 = (a_g / a_l) if (a_l and a_g is not None and a_l > 0) else None
                        row += [f"{r1:.2f}x", f"{r2:.2f}x" if r2 is not None else "-"]
                    else:
                        row += ["-", "-"]
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(
        "Latency columns are milliseconds; +p50/+p99 = gateway minus direct at the same "
        "percentile (the overhead the gateway adds). stream-ttft = time to first content "
        "chunk, stream-total = whole stream. Values are medians over "
        f"{meta.get('repeat', 1)} repeat(s); gateway RPS shows (min-max) when there are several; "
        "* = one "
        "repeat of that cell ran while other processes used >=10% of a CPU."
    )
    gwinfo = meta.get("gateways", {})
    if gwinfo:
        lines.append("")
        lines.append(
            "| gateway | workers | runs | startup to first 200 (s) | RSS idle (MiB) | "
            "peak RSS, sum of VmHWM (MiB) | processes |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        for g in gwinfo:
            by_w: dict[int, list[dict[str, Any]]] = {}
            for e in gwinfo[g]:
                by_w.setdefault(e["workers"], []).append(e)
            for w in sorted(by_w):
                es = by_w[w]

                def med(k: str, es: list[dict[str, Any]] = es) -> float | None:
                    vals = [e[k] for e in es if e.get(k) is not None]
                    return statistics.median(vals) if vals else None

                st, nproc = med("startup_s"), med("nproc")
                lines.append(
                    f"| {g} | {w} | {len(es)} | {'-' if st is None else f'{st:.1f}'} | "
                    f"{_mib(med('rss_idle_kib'))} | {_mib(med('hwm_kib'))} | "
                    f"{'-' if nproc is None else int(nproc)} |"
                )
    return "\n".join(lines)


def _mib(k: float | None) -> str:
    return "-" if k is None else f"{k / 1024:.0f}"


def report(files: list[str]) -> None:
    results: list[Cell] = []
    meta: Meta | None = None
    cols: list[str] = []
    for i, fn in enumerate(files):
        with open(fn) as f:
            d = json.load(f)
        m = d["meta"]
        if meta is None:
            meta = dict(m, gateways={})
        for c in d["results"]:
            results.append(dict(c, repeat=f"{i}-{c.get('repeat', 0)}"))
        for g, es in m.get("gateways", {}).items():
            meta["gateways"].setdefault(g, []).extend(es)
        for c in m.get("columns", []):
            if c not in cols:
                cols.append(c)
    assert meta is not None  # --report takes one file or more
    meta["repeat"] = len({c["repeat"] for c in results if c["column"] == "direct"})
    print(f"# merged {len(files)} run(s): " + ", ".join(files))
    print(render(results, meta, cols))


# ---------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--target", help="base URL of the gateway under test, e.g. http://127.0.0.1:8000"
    )
    ap.add_argument("--key", default="", help="API key for --target")
    ap.add_argument(
        "--model", default="gpt-4o", help="chat model name on --target (default gpt-4o)"
    )
    ap.add_argument("--embed-model", default="text-embedding-3-small")
    ap.add_argument("--target-name", default="target")
    ap.add_argument(
        "--target-cmd",
        help="command that starts the target in the foreground; "
        "placeholders {workers} {port} {upstream}; started/stopped per workers pass, pinned "
        "like LiteLLM. Without it, --target must already be running.",
    )
    ap.add_argument(
        "--target-port", type=int, help="port for {port} (default: taken from --target)"
    )
    ap.add_argument("--target-pid", type=int, help="PID of an already-running target (for RSS)")
    ap.add_argument(
        "--target-workers",
        type=int,
        default=1,
        help="worker count of an already-running target (it is compared in that pass only)",
    )
    ap.add_argument(
        "--ready-path", default="/v1/models", help="GET path that returns 200 when ready"
    )
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--litellm-port", type=int, default=4000)
    ap.add_argument("--litellm-key", default="sk-bench-1234")
    ap.add_argument(
        "--litellm-server", choices=("uvicorn", "granian", "gunicorn"), default="uvicorn"
    )
    ap.add_argument("--upstream-port", type=int, default=18000)
    ap.add_argument("--workers", default="1,2", help="worker counts, comma list (default 1,2)")
    ap.add_argument(
        "--latencies", default="0,50", help="upstream latency ms, comma list (default 0,50)"
    )
    ap.add_argument(
        "--chunk-delay-ms", type=float, default=0.0, help="upstream gap between SSE chunks"
    )
    ap.add_argument("--conc", default="1,16,64", help="concurrency levels (default 1,16,64)")
    ap.add_argument(
        "--embed-conc", default="16", help="concurrency levels for embeddings (default 16)"
    )
    ap.add_argument("--scenarios", default="chat,stream,embed")
    ap.add_argument("--duration", type=int, default=8, help="seconds per cell (default 8)")
    ap.add_argument(
        "--warmup", type=int, default=2, help="seconds of unmeasured load per block (default 2)"
    )
    ap.add_argument(
        "--prime",
        type=int,
        default=5,
        help="seconds of unmeasured chat load right after a gateway starts (default 5)",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=20,
        help="before each cell wait up to this many s for other processes to go quiet (default 20)",
    )
    ap.add_argument(
        "--repeat", type=int, default=1, help="repeat the whole matrix N times; medians shown"
    )
    ap.add_argument("--out", help="output folder (default /tmp/nexeon-bench/<time>)")
    ap.add_argument("--litellm-venv", default=".bench/litellm")
    ap.add_argument(
        "--report",
        nargs="+",
        metavar="RESULTS_JSON",
        help="only print the table for earlier results.json files (merged: medians over all)",
    )
    a = ap.parse_args()
    if a.report:
        report(a.report)
        return

    py = sys.executable
    ncpu = os.cpu_count() or 2
    workers = [int(x) for x in a.workers.split(",") if x]
    lats = [float(x) for x in a.latencies.split(",") if x]
    concs = [int(x) for x in a.conc.split(",") if x]
    econcs = [int(x) for x in a.embed_conc.split(",") if x]
    scen = [s for s in a.scenarios.split(",") if s]
    out = a.out or os.path.join("/tmp/nexeon-bench", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    harness_cpus = "0" if ncpu >= 2 else None

    def gw_cpus(w: int) -> str | None:
        if ncpu < 2:
            return None
        return (str(w) if w == 1 else f"1-{w}") if w + 1 <= ncpu else f"0-{ncpu - 1}"

    pinning = {}
    for w in workers:
        g = gw_cpus(w)
        if g is None:
            pinning[str(w)] = "no pinning (1 CPU)"
        elif w + 1 <= ncpu:
            pinning[str(w)] = (
                f"gateway pinned to CPU {g} (exclusive); "
                f"upstream + load generator on CPU {harness_cpus}"
            )
        else:
            pinning[str(w)] = (
                f"gateway on CPUs {g}, sharing CPU {harness_cpus} with upstream + load generator "
                f"(only {ncpu} CPUs)"
            )

    atexit.register(stop_all)
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: sys.exit(130))

    # --- upstream
    if not port_free(a.upstream_port):
        sys.exit(f"port {a.upstream_port} is busy (another fake upstream?); use --upstream-port")
    up_base = f"http://127.0.0.1:{a.upstream_port}"
    up = start(
        [
            py,
            os.path.join(HERE, "fake_upstream.py"),
            "--port",
            str(a.upstream_port),
            "--chunk-delay-ms",
            str(a.chunk_delay_ms),
        ],
        harness_cpus,
        log=os.path.join(out, "upstream.log"),
    )
    if wait_ready(up_base + "/health", None, up, timeout=20) is None:
        sys.exit("fake upstream did not start; see " + out + "/upstream.log")

    def set_latency(ms: float) -> None:
        http(f"{up_base}/__bench/config?latency_ms={ms}&chunk_delay_ms={a.chunk_delay_ms}")

    def upstream_calls() -> int:
        _, b = http(f"{up_base}/__bench/stats")
        s = json.loads(b)
        return s["chat"] + s["stream"] + s["embeddings"]

    results = []
    meta = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "host": platform.node(),
        "ncpu": ncpu,
        "python": platform.python_version(),
        "duration_s": a.duration,
        "repeat": a.repeat,
        "latencies_ms": lats,
        "conc": concs,
        "embed_conc": econcs,
        "workers": workers,
        "chunk_delay_ms": a.chunk_delay_ms,
        "pinning": pinning,
        "gateways": {},
        "argv": sys.argv[1:],
    }
    try:
        meta["litellm_version"] = subprocess.run(
            [
                os.path.join(a.litellm_venv, "bin", "python"),
                "-c",
                "import importlib.metadata as m;print(m.version('litellm'))",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except Exception:
        meta["litellm_version"] = None
    bodies_dir = os.path.join(out, "bodies")
    os.makedirs(bodies_dir, exist_ok=True)
    meta["calib_ms_start"] = calibrate(gw_cpus(1), py)
    cpu0 = cpu_snapshot()
    t_all = time.time()

    def run_block(
        column: str, w: int, base: str, key: str, model: str, rep: int, pids: int | None
    ) -> None:
        bodies = write_bodies(bodies_dir, model, a.embed_model)
        chat_url = base + "/v1/chat/completions"
        emb_url = base + "/v1/embeddings"
        for lat in lats:
            set_latency(lat)
            if a.warmup > 0:
                run_wrk(chat_url, bodies["chat"], key, max(concs), a.warmup, harness_cpus)
                if "stream" in scen:
                    run_stream(chat_url, bodies["stream"], key, max(concs), 1, harness_cpus, py)
            cells = []
            if "chat" in scen:
                cells += [("chat", c) for c in concs]
            if "stream" in scen:
                cells += [("stream", c) for c in concs]
            if "embed" in scen:
                cells += [("embed", c) for c in econcs]
            for sc, c in cells:
                waited = wait_quiet(a.quiet_wait, [up.pid, pids])
                n0 = upstream_calls()
                m0, o0, t0 = cpu_snapshot(), tree_cpu_s([up.pid, pids]), time.time()
                if sc == "stream":
                    r = run_stream(chat_url, bodies["stream"], key, c, a.duration, harness_cpus, py)
                else:
                    url, body = (
                        (chat_url, bodies["chat"]) if sc == "chat" else (emb_url, bodies["embed"])
                    )
                    r = run_wrk(url, body, key, c, a.duration, harness_cpus)
                m1, o1, t1 = cpu_snapshot(), tree_cpu_s([up.pid, pids]), time.time()
                # CPU used meanwhile by processes not ours (other sessions, CI...), % of one CPU
                foreign = ((m1[0] - m0[0]) - (m1[1] - m0[1]) - (o1 - o0)) / max(0.1, t1 - t0)
                r.update(
                    {
                        "column": column,
                        "workers": w,
                        "scenario": sc,
                        "conc": c,
                        "latency_ms": lat,
                        "repeat": rep,
                        "upstream_calls": upstream_calls() - n0,
                        "foreign_cpu_pct": round(max(0.0, 100 * foreign), 1),
                        "own_cpu_pct": round(
                            100 * ((m1[1] - m0[1]) + (o1 - o0)) / max(0.1, t1 - t0), 1
                        ),
                        "quiet_wait_s": waited,
                    }
                )
                if pids:
                    r["rss_kib"], r["hwm_kib"] = rss_kib(proc_tree(pids))
                results.append(r)
                tag = (
                    f"{r['rps']:.0f} rps p50 {fmt_ms(r.get('p50_us'))} ms "
                    f"p99 {fmt_ms(r.get('p99_us'))} ms"
                    + (f" ttft p50 {fmt_ms(r['ttft_p50_us'])} ms" if sc == "stream" else "")
                    + (
                        f" ERRORS {r['errors']} {r.get('last_error', '')}"
                        if r.get("errors")
                        else ""
                    )
                    + (
                        f"  [other load {r['foreign_cpu_pct']:.0f}% CPU]"
                        if r["foreign_cpu_pct"] >= 10
                        else ""
                    )
                    if "rps" in r
                    else r.get("error")
                )
                print(
                    f"  [{time.time() - t_all:6.0f}s] {column:8} w={w} up={lat:g}ms "
                    f"{sc:6} c={c:<3} {tag}",
                    flush=True,
                )
                with open(os.path.join(out, "results.json"), "w") as f:
                    json.dump({"meta": meta, "results": results}, f, indent=1)

    def litellm_cmd(w: int) -> tuple[list[str], dict[str, str]]:
        cfg = os.path.join(out, "litellm_config.yaml")
        with open(os.path.join(HERE, "litellm_config.yaml")) as f:
            txt = f.read().replace("UPSTREAM", up_base + "/v1").replace("MASTER_KEY", a.litellm_key)
        with open(cfg, "w") as f:
            f.write(txt)
        cmd = [
            os.path.join(a.litellm_venv, "bin", "litellm"),
            "--config",
            cfg,
            "--host",
            "127.0.0.1",
            "--port",
            str(a.litellm_port),
            "--num_workers",
            str(w),
        ]
        if a.litellm_server != "uvicorn":
            cmd.append(f"--run_{a.litellm_server}")
        env = dict(
            os.environ,
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            LITELLM_LOG="ERROR",
            LITELLM_MODE="PRODUCTION",
        )
        return cmd, env

    target_base: str = a.target.rstrip("/") if a.target else ""
    if target_base and target_base.endswith("/v1"):
        target_base = target_base[:-3]

    for rep in range(a.repeat):
        print(f"== repeat {rep + 1}/{a.repeat}: direct to upstream", flush=True)
        run_block("direct", 0, up_base, "", a.model, rep, None)
        for w in workers:
            gws = []
            if not a.no_litellm:
                gws.append("litellm")
            if target_base and (a.target_cmd or a.target_workers == w):
                gws.append(a.target_name)
            for g in gws:
                proc = None
                pid = None
                entry: dict[str, Any] = {"workers": w, "repeat": rep}
                if g == "litellm":
                    base, key, model = f"http://127.0.0.1:{a.litellm_port}", a.litellm_key, "gpt-4o"
                    if not port_free(a.litellm_port):
                        sys.exit(f"port {a.litellm_port} busy; use --litellm-port")
                    cmd, env = litellm_cmd(w)
                    print(
                        f"== starting litellm ({a.litellm_server}, {w} worker(s)) "
                        f"on CPU {gw_cpus(w)}",
                        flush=True,
                    )
                    proc = start(
                        cmd, gw_cpus(w), env=env, log=os.path.join(out, f"litellm-w{w}.log")
                    )
                else:
                    base, key, model = target_base, a.key, a.model
                    if a.target_cmd:
                        port = a.target_port or int(target_base.rsplit(":", 1)[1])
                        cmd = a.target_cmd.format(workers=w, port=port, upstream=up_base + "/v1")
                        print(f"== starting {g}: {cmd} on CPU {gw_cpus(w)}", flush=True)
                        proc = start(cmd, gw_cpus(w), log=os.path.join(out, f"{g}-w{w}.log"))
                    else:
                        pid = a.target_pid
                t_ready = wait_ready(base + a.ready_path, key, proc, timeout=180)
                entry["startup_s"] = t_ready if proc else None
                if t_ready is None:
                    print(f"!! {g} did not become ready at {base}{a.ready_path}", flush=True)
                    entry["error"] = "not ready"
                    meta["gateways"].setdefault(g, []).append(entry)
                    stop(proc)
                    continue
                root = proc.pid if proc else pid
                time.sleep(1.0)
                # First requests import lazy modules and open pools: kept out of the cells.
                if a.prime > 0:
                    bodies = write_bodies(bodies_dir, model, a.embed_model)
                    set_latency(0)
                    run_wrk(
                        base + "/v1/chat/completions",
                        bodies["chat"],
                        key,
                        16,
                        a.prime,
                        harness_cpus,
                    )
                    if "stream" in scen:
                        run_stream(
                            base + "/v1/chat/completions",
                            bodies["stream"],
                            key,
                            16,
                            2,
                            harness_cpus,
                            py,
                        )
                    if "embed" in scen:
                        run_wrk(base + "/v1/embeddings", bodies["embed"], key, 16, 2, harness_cpus)
                if root:
                    tree = proc_tree(root)
                    entry["rss_idle_kib"], _ = rss_kib(tree)
                run_block(g, w, base, key, model, rep, root)
                if root:
                    tree = proc_tree(root)
                    entry["rss_end_kib"], entry["hwm_kib"] = rss_kib(tree)
                    entry["nproc"] = len(tree)
                meta["gateways"].setdefault(g, []).append(entry)
                stop(proc)
    stop(up)
    meta["elapsed_s"] = round(time.time() - t_all, 1)
    cpu1 = cpu_snapshot()
    # CPU used on the machine by processes that are not ours (other sessions, CI, ...)
    meta["foreign_cpu_pct"] = round(
        100 * max(0.0, (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1])) / max(1.0, meta["elapsed_s"]), 1
    )
    meta["calib_ms_end"] = calibrate(gw_cpus(1), py)
    columns = (
        ["direct"]
        + (["litellm"] if not a.no_litellm else [])
        + ([a.target_name] if target_base else [])
    )
    meta["columns"] = columns
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    table = render(results, meta, columns)
    head = (
        f"# gateway overhead: {', '.join(columns)}  ({meta['started']}, {ncpu} CPUs, "
        f"{a.duration}s/cell, litellm {meta['litellm_version']} via {a.litellm_server}, "
        f"elapsed {meta['elapsed_s']}s, "
        f"CPU calibration {meta['calib_ms_start']}/{meta['calib_ms_end']} ms, "
        f"other processes used {meta['foreign_cpu_pct']}% of a CPU on average)"
    )
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(head + "\n" + table + "\n")
    print("\n" + head + table)
    print(f"\nraw results: {out}/results.json   table: {out}/results.md")


if __name__ == "__main__":
    main()
