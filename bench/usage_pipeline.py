"""Does the usage pipeline keep up with the gateway's peak, and how late is a record?

One gateway worker (CPU 1) at full load from wrk (CPU 0, against the shared bench's fake
upstream at 0 ms), a Celery worker with beat draining usage every second (unpinned), the
machine's PostgreSQL and Redis (db 2). Samples the queue depth during the run; afterwards
waits for the backlog to clear and reads every record of the run for the lag from a
call's last byte to its record being written (recorded_at - (created_at + duration)).

    .venv/bin/python bench/usage_pipeline.py [--seconds 30] [--connections 64]

Needs wrk and /tmp/bench-venv (shared/bench/setup.sh). Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from django.conf import settings  # noqa: E402

from credit import keys  # noqa: E402

settings.configure(CREDIT_SHARDS=int(os.environ.get("CREDIT_SHARDS", "16")))


def queued(client: redis.Redis) -> int:
    """Usage entries in every shard's stream."""
    return sum(client.xlen(keys.usage_stream(shard)) for shard in keys.shards())

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(os.environ.get("BENCH_DIR", ROOT.parent / "shared" / "bench"))
DB = os.environ.get("NEXEON_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nexeon_bench")
RD = os.environ.get("NEXEON_BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
PY = str(ROOT / ".venv" / "bin" / "python")
ENV = {
    **os.environ,
    "DATABASE_URL": DB,
    "REDIS_URL": RD,
    "SECRET_KEY": "bench",
    "LOG_LEVEL": "WARNING",
}


def start(cmd: list[str], cpus: str | None = None, **kw) -> subprocess.Popen:
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    return subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, **kw)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()

    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=ENV, check=True)
    client = redis.Redis.from_url(RD)
    client.flushdb()
    key = (
        subprocess.run(
            [PY, "manage.py", "create_api_key", "bench@example.com", "--credits", "1000000"]
            + ["--rpm", "100000000", "--plan", "unlimited", "--name", "bench"],
            cwd=ROOT,
            env=ENV,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    started_at = time.time()
    processes = []
    try:
        upstream = start(
            ["/tmp/bench-venv/bin/python", str(BENCH / "fake_upstream.py"), "--port", "18000"],
            cpus="0",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(upstream)
        gateway = start(
            [
                str(ROOT / ".venv/bin/uvicorn"),
                "nexeon.asgi:application",
                "--port",
                "8000",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--lifespan",
                "on",
            ],
            cpus="1",
            env={
                **ENV,
                "OPENAI_BASE_URL": "http://127.0.0.1:18000/v1",
                "OPENAI_API_KEY": "sk-bench",
            },
            stderr=subprocess.DEVNULL,
        )
        processes.append(gateway)
        schedule = tempfile.mkdtemp()
        worker = start(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "nexeon",
                "worker",
                "--beat",
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
                "--schedule",
                f"{schedule}/beat",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(worker)
        time.sleep(4)

        body = Path(schedule) / "body.json"
        body.write_text(
            json.dumps(
                {
                    "model": "gpt-4o",
                    "messages": [{"role": "user", "content": "Hello, how are you today?"}],
                }
            )
        )
        depth: list[int] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                depth.append(queued(client))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        load_start = time.time()
        out = subprocess.run(
            [
                "taskset",
                "-c",
                "0",
                "wrk",
                "-t1",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                "-s",
                str(BENCH / "post.lua"),
                "http://127.0.0.1:8000/v1/chat/completions",
                "--",
                str(body),
                key,
            ],
            capture_output=True,
            text=True,
        ).stdout
        load_end = time.time()
        wrk = json.loads(out.split("WRKJSON", 1)[1].strip().splitlines()[0])
        while queued(client) and time.time() - load_end < 300:
            time.sleep(0.2)
        drained_after = time.time() - load_end
        sampling.set()
        sampler.join()
    finally:
        for process in reversed(processes):
            stop(process)

    import psycopg

    with psycopg.connect(DB.replace("postgres://", "postgresql://")) as db:
        rows = db.execute(
            "select extract(epoch from recorded_at) - extract(epoch from created_at) "
            "- duration_ms / 1000.0 from usage_usagerecord where created_at >= to_timestamp(%s)",
            (started_at,),
        ).fetchall()
    lags = [float(row[0]) for row in rows]
    result = {
        "seconds": args.seconds,
        "connections": args.connections,
        "requests_answered": wrk["requests"] - wrk.get("errors", 0),
        "errors": wrk.get("errors", 0),
        "gateway_rps": round(wrk["requests"] / (load_end - load_start)),
        "records_written": len(lags),
        "records_per_second_during_load": round(
            len(lags) / (load_end - load_start + drained_after)
        ),
        "queue_depth_max": max(depth) if depth else 0,
        "queue_depth_median": statistics.median(depth) if depth else 0,
        "backlog_cleared_after_load_s": round(drained_after, 2),
        "lag_p50_s": round(percentile(lags, 0.5), 3) if lags else None,
        "lag_p99_s": round(percentile(lags, 0.99), 3) if lags else None,
        "lag_max_s": round(max(lags), 3) if lags else None,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
