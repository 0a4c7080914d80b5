"""How fast is usage booked, with one drainer and with several at once?

Fills the usage stream with N calls' events (as settlements queue them, each charged),
then starts K drainer processes (each `usage.pipeline.drain` in a loop until the stream
is empty) and times them to the last record. Uses the machine's PostgreSQL (the bench
database) and Redis (db 2), or those NEXEON_BENCH_DATABASE_URL / NEXEON_BENCH_REDIS_URL
name; run it with nothing else running.

    .venv/bin/python bench/drain_throughput.py [--events 50000] [--drainers 1,2]

Prints one JSON line per drainer count: events, seconds, events per second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get("NEXEON_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nexeon_bench")
RD = os.environ.get("NEXEON_BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
ENV = {
    **os.environ,
    "DATABASE_URL": DB,
    "REDIS_URL": RD,
    "SECRET_KEY": "bench",
    "LOG_LEVEL": "WARNING",
}
sys.path.insert(0, str(ROOT))
from django.conf import settings  # noqa: E402

from credit import keys  # noqa: E402

# This process only writes the stream, placed by credit.keys on the shard count; the
# drainers load the full settings.
settings.configure(CREDIT_SHARDS=int(os.environ.get("CREDIT_SHARDS", "16")))
DRAINER = """
import django, os, sys, time
django.setup()
from usage import pipeline
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.005)
while pipeline.drain(consumer=sys.argv[1]):
    pass
"""


def fill(client: redis.Redis, organization_id: int, events: int, run: str) -> None:
    pipe = client.pipeline(transaction=False)
    now = time.time()
    for n in range(events):
        event = {
            "request_id": f"bench-{run}-{n}",
            "organization_id": organization_id,
            "key_id": None,
            "endpoint": "chat",
            "model": "gpt-4o",
            "provider": "openai",
            "status": 200,
            "prompt_tokens": 20,
            "completion_tokens": 60,
            "cost_nanos": 650,
            "ttfb_ms": 51.0,
            "duration_ms": 52.0,
            "at": now,
            "description": "gpt-4o via key bench",
        }
        pipe.xadd(
            keys.usage_stream(keys.shard_of(organization_id)),
            {"o": organization_id, "c": 650, "u": 0, "e": orjson.dumps(event)},
        )
        if n % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--drainers", default="1,2")
    args = parser.parse_args()
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=ENV, check=True)
    subprocess.run(
        [python, "manage.py", "create_api_key", "drain@example.com", "--credits", "1000"],
        cwd=ROOT,
        env=ENV,
        check=True,
        capture_output=True,
    )
    with psycopg.connect(DB.replace("postgres://", "postgresql://")) as db:
        row = db.execute(
            "select o.id from accounts_organization o join accounts_membership m "
            "on m.organization_id = o.id join accounts_user u on u.id = m.user_id "
            "where u.email = 'drain@example.com' limit 1"
        ).fetchone()
    if row is None:
        raise SystemExit("create_api_key made no organization for drain@example.com")
    organization_id: int = row[0]
    client = redis.Redis.from_url(RD)
    for count in map(int, args.drainers.split(",")):
        stream = keys.usage_stream(keys.shard_of(organization_id))
        client.delete(stream)
        fill(client, organization_id, args.events, f"{time.time_ns()}")
        flag = Path(tempfile.mkdtemp()) / "go"
        drainers = [
            subprocess.Popen(
                [python, "-c", DRAINER, f"bench-drainer-{n}", str(flag)],
                cwd=ROOT,
                env={**ENV, "DJANGO_SETTINGS_MODULE": "nexeon.settings"},
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(count)
        ]
        for drainer in drainers:  # every one set up before the clock starts
            assert drainer.stdout is not None  # stdout=PIPE
            if drainer.stdout.readline().strip() != "ready":
                raise SystemExit(f"drainer {drainer.pid} did not start")
        started = time.monotonic()
        flag.touch()
        for drainer in drainers:
            drainer.wait(timeout=600)
        seconds = time.monotonic() - started
        left = client.xlen(stream)
        print(
            json.dumps(
                {
                    "drainers": count,
                    "events": args.events,
                    "left": left,
                    "seconds": round(seconds, 2),
                    "events_per_second": round(args.events / seconds),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
