"""Does the money store's ceiling grow with Redis Cluster masters?

Starts a Redis Cluster of 1 master, then of 3 (loopback, no persistence), and drives each
with the same N client processes: each runs C concurrent loops of one call's credit work
through the real store (RedisStore.reserve, then the settlement script with its usage
event), for many organizations (so every shard is used). Prints, per cluster, the calls
per second and each master's CPU use over the run (INFO cpu), and the ceiling the busiest
master allows: calls/s divided by its share of one core.

    .venv/bin/python bench/cluster_ceiling.py [--clients 4] [--concurrency 32]
        [--seconds 10] [--organizations 64] [--masters 1,3]

On a machine with few cores the clients and the masters share them: the calls/s measured
are bounded by the cores, and the masters' CPU shows what each would allow alone.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nexeon_bench")


def client_process(
    url: str,
    organizations: int,
    concurrency: int,
    seconds: float,
    out: Queue[int],
    ready: Barrier,
    go: Event,
) -> None:
    os.environ["REDIS_URL"] = url
    import asyncio

    import django

    django.setup()
    import uvloop

    from credit.records import Charge, Reserved
    from credit.redis_store import RedisStore

    store = RedisStore()

    class Payer:
        def __init__(self, organization_id: int) -> None:
            self.key_id = organization_id
            self.organization_id = organization_id
            self.rpm_limit = self.tpm_limit = self.org_rpm_limit = self.org_tpm_limit = None
            self.monthly_spend_limit_nanos = None

    payers = [Payer(n + 1) for n in range(organizations)]
    event = b'{"request_id": "bench", "organization_id": 1, "model": "gpt-4o"}'

    async def loop(worker: int, deadline: float) -> int:
        done, n = 0, 0
        while time.monotonic() < deadline:
            payer = payers[(worker + n) % len(payers)]
            n += 1
            call = f"{os.getpid()}-{worker}-{n}"
            reserved = await store.reserve(
                payer, hold_id=call, amount=1_000, tokens=0, deadline=time.time() + 60
            )
            assert isinstance(reserved, Reserved), reserved
            await store.send_settlement(reserved.hold, Charge(call, 1_000, 700, event)).reply()
            done += 1
        return done

    async def run() -> int:
        await asyncio.gather(*(loop(w, time.monotonic() + 0.5) for w in range(concurrency)))
        ready.wait()  # (warmed up: connections made, scripts loaded; every client alike)
        go.wait()  # blocks this loop on purpose: nothing else runs on it before the start
        deadline = time.monotonic() + seconds
        return sum(await asyncio.gather(*(loop(w, deadline) for w in range(concurrency))))

    out.put(uvloop.run(run()))


def cpu_seconds(port: int) -> float:
    import redis

    info = redis.Redis(port=port).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure(masters: int, args: argparse.Namespace) -> dict[str, object]:
    import django

    django.setup()
    import asyncio

    from django.conf import settings

    from credit import connections
    from credit.records import LedgerFigures
    from credit.redis_store import RedisStore
    from tests.own_services import OwnRedisCluster

    cluster = OwnRedisCluster(masters=masters)
    cluster.start()
    try:
        settings.REDIS_URL = cluster.url

        async def load() -> None:
            store = RedisStore()
            for organization_id in range(1, args.organizations + 1):
                await store.load_balance(organization_id, LedgerFigures(10**15, 1, 0))
            connections.fast().close()

        asyncio.run(load())
        context = multiprocessing.get_context("spawn")
        queue, ready, go = context.Queue(), context.Barrier(args.clients + 1), context.Event()
        processes = [
            context.Process(
                target=client_process,
                args=(
                    *(cluster.url, args.organizations, args.concurrency, args.seconds),
                    *(queue, ready, go),
                ),
            )
            for _ in range(args.clients)
        ]
        for process in processes:
            process.start()
        ready.wait(timeout=120)
        before = {port: cpu_seconds(port) for port in cluster.ports}
        started = time.monotonic()
        go.set()
        calls = sum(queue.get(timeout=args.seconds + 120) for _ in processes)
        elapsed = time.monotonic() - started
        used = {port: (cpu_seconds(port) - before[port]) / elapsed for port in cluster.ports}
        for process in processes:
            process.join()
        rate = calls / args.seconds
        busiest = max(used.values())
        return {
            "masters": masters,
            "clients": args.clients,
            "concurrency": args.concurrency,
            "calls_per_second": round(rate),
            "master_cpu_share": [round(share, 2) for share in used.values()],
            "ceiling_calls_per_second": round(rate / busiest) if busiest else None,
        }
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--organizations", type=int, default=64)
    parser.add_argument("--masters", default="1,3")
    args = parser.parse_args()
    for masters in map(int, args.masters.split(",")):
        print(json.dumps(measure(masters, args)), flush=True)


if __name__ == "__main__":
    main()
