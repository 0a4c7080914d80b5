"""Nothing lost, nothing counted twice, with real processes killed: the Celery worker
mid-batch, the Redis broker while calls flow, PostgreSQL while calls flow. The stores are
instances this module starts itself on free ports (tests/own_services.py), the gateway and
the worker are real subprocesses, and the provider is the fake OpenAI on loopback."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest
import redis

from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import serving
from tests.own_services import OwnPostgres, OwnRedis
from tests.support import (
    PROJECT_DIR,
    manage_env,
    queued_usage,
    run_manage,
    start_nexeon,
    stop_process,
)

UPSTREAM_KEY = "sk-upstream-faults"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "count me"}]}


@dataclass
class Stack:
    postgres: OwnPostgres
    redis: OwnRedis
    upstream: str
    key: str
    tmp: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return manage_env(
            DATABASE_URL=self.postgres.url,
            REDIS_URL=self.redis.url,
            OPENAI_BASE_URL=f"{self.upstream}/v1",
            OPENAI_API_KEY=UPSTREAM_KEY,
            GATEWAY_KEY_CACHE_SECONDS="30",
            USAGE_CLAIM_SECONDS="2",  # a killed worker's batch is taken over within seconds
            **extra,
        )

    def start_worker(self) -> subprocess.Popen:
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "nexeon", "worker", "--beat"),
                *("--pool", "solo", "--loglevel", "WARNING", "--without-heartbeat"),
                *("--without-gossip", "--without-mingle", "--schedule", f"{self.tmp}/beat"),
            ],
            cwd=PROJECT_DIR,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes.append(worker)
        return worker

    def start_gateway(self, **extra: str) -> str:
        log = open(f"{self.tmp}/gateway.log", "ab")  # noqa: SIM115
        url, gateway = start_nexeon(self.env(**extra), stderr=log)
        self.processes.append(gateway)
        return url

    def sql(self, query: str, *values) -> int:
        with psycopg.connect(self.postgres.url.replace("postgres://", "postgresql://")) as db:
            return db.execute(query, values or None).fetchone()[0]

    def recorded(self, request_ids: list[str]) -> dict[str, int]:
        with psycopg.connect(self.postgres.url.replace("postgres://", "postgresql://")) as db:
            rows = db.execute(
                "select request_id, count(*) from usage_usagerecord "
                "where request_id = any(%s) group by request_id",
                (request_ids,),
            ).fetchall()
        return dict(rows)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    postgres, broker = OwnPostgres(), OwnRedis()
    fake = FakeOpenAI(api_key=UPSTREAM_KEY)
    with serving(fake) as upstream:
        try:
            postgres.create()
            broker.start()
            environment = manage_env(DATABASE_URL=postgres.url, REDIS_URL=broker.url)
            migrated = run_manage("migrate", "--noinput", env=environment, timeout=300)
            assert migrated.returncode == 0, migrated.stderr
            created = run_manage(
                *("create_api_key", "faults@example.com", "--credits", "1000"),
                *("--plan", "unlimited"),  # thousands of calls a minute, from one key
                env=environment,
            )
            assert created.returncode == 0, created.stderr
            key = created.stdout.strip().splitlines()[-1]
            made = Stack(postgres, broker, upstream, key, str(tmp_path_factory.mktemp("faults")))
            yield made
        finally:
            for process in getattr(locals().get("made"), "processes", []):
                if process.poll() is None:
                    stop_process(process)
            broker.stop()
            postgres.destroy()


@pytest.fixture
def fresh(stack) -> Iterator[Stack]:
    yield stack
    for process in stack.processes:
        if process.poll() is None:
            stop_process(process)
    stack.processes.clear()


def call(url: str, key: str, client: httpx.Client) -> tuple[int, str]:
    try:
        response = client.post(
            f"{url}/v1/chat/completions",
            json=CHAT,
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        )
    except httpx.TransportError:
        return 0, ""
    return response.status_code, response.headers.get("x-request-id", "")


def load(url: str, key: str, seconds: float, workers: int = 8) -> list[tuple[int, str]]:
    """Calls back to back from `workers` threads for `seconds`."""
    results: list[tuple[int, str]] = []
    stop = time.monotonic() + seconds

    def run() -> None:
        with httpx.Client() as client:
            while time.monotonic() < stop:
                results.append(call(url, key, client))

    with ThreadPoolExecutor(workers) as pool:
        for _ in range(workers):
            pool.submit(run)
    return results


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def assert_each_answered_call_recorded_once(stack: Stack, results, timeout=60.0) -> list[str]:
    answered = [rid for status, rid in results if status == 200]
    assert answered, "no call was answered"
    wait_until(
        lambda: len(stack.recorded(answered)) == len(answered),
        timeout,
        "not every answered call was recorded",
    )
    counts = stack.recorded(answered)
    assert set(counts.values()) == {1}
    charged = stack.sql(
        "select count(*) from billing_ledgerentry where kind = 'usage' and reference = any(%s)",
        [f"usage:{rid}" for rid in answered],
    )
    assert charged == len(answered)  # one ledger entry each
    return answered


def test_a_worker_killed_mid_batch_loses_and_repeats_nothing(fresh):
    stack = fresh
    url = stack.start_gateway()
    results = load(url, stack.key, seconds=4, workers=16)
    assert {status for status, _ in results} == {200}
    queued = len(queued_usage(redis.Redis.from_url(stack.redis.url)))
    assert queued >= len(results) > 1000
    before = stack.sql("select count(*) from usage_usagerecord")

    worker = stack.start_worker()
    wait_until(
        lambda: stack.sql("select count(*) from usage_usagerecord") > before,
        60,
        "the worker wrote nothing",
    )
    stop_process(worker, signal.SIGKILL)  # in the middle of its batches
    written = stack.sql("select count(*) from usage_usagerecord") - before
    assert 0 < written < len(results), "the kill came too late to test anything"

    stack.start_worker()
    assert_each_answered_call_recorded_once(stack, results)
    wait_until(lambda: not queued_usage(redis.Redis.from_url(stack.redis.url)), 30, "the backlog")


def test_the_broker_killed_while_calls_flow_loses_no_answered_call(fresh):
    stack = fresh
    url = stack.start_gateway()
    stack.start_worker()
    results: list[tuple[int, str]] = []
    flow = threading.Thread(target=lambda: results.extend(load(url, stack.key, seconds=7)))
    flow.start()
    time.sleep(2)
    stack.redis.kill()  # SIGKILL: only the AOF survives
    time.sleep(1.5)
    stack.redis.start()
    flow.join()
    statuses = {status for status, _ in results}
    assert statuses <= {200, 503}, statuses  # refused while down, never a 500
    assert 503 in statuses  # the outage was seen (credits fail closed)
    answered = assert_each_answered_call_recorded_once(stack, results)
    # Service came back without a restart.
    with httpx.Client() as client:
        assert call(url, stack.key, client)[0] == 200
    assert len(answered) > 100


def test_with_local_fallback_the_broker_killed_refuses_nothing_and_loses_nothing(fresh):
    """GATEWAY_REDIS_FAILURE=local: while Redis is down each gateway process checks credit
    against the ledger itself and books usage directly."""
    stack = fresh
    url = stack.start_gateway(GATEWAY_REDIS_FAILURE="local")
    stack.start_worker()
    results: list[tuple[int, str]] = []
    flow = threading.Thread(target=lambda: results.extend(load(url, stack.key, seconds=9)))
    flow.start()
    time.sleep(2)
    before = stack.sql("select count(*) from usage_usagerecord")
    stack.redis.kill()
    # Longer than the settle retries (2.5 s) of the calls caught in flight, which hold
    # every load thread until they give up on Redis and book directly.
    time.sleep(4)
    during = stack.sql("select count(*) from usage_usagerecord")
    stack.redis.start()
    flow.join()
    statuses = {status for status, _ in results}
    assert statuses == {200}, statuses  # served throughout
    assert during > before  # booked straight into the database while Redis was away
    answered = assert_each_answered_call_recorded_once(stack, results)
    assert len(answered) > 100


def test_the_database_down_while_calls_flow_loses_no_answered_call(fresh):
    stack = fresh
    url = stack.start_gateway()
    stack.start_worker()
    with httpx.Client() as client:
        assert call(url, stack.key, client)[0] == 200  # the key is cached from here on
    results: list[tuple[int, str]] = []
    flow = threading.Thread(target=lambda: results.extend(load(url, stack.key, seconds=7)))
    flow.start()
    time.sleep(1.5)
    stack.postgres.stop("immediate")  # a crash: recovery from the WAL on start
    time.sleep(3)
    stack.postgres.start()
    flow.join()
    statuses = {status for status, _ in results}
    assert statuses == {200}, statuses  # the gateway never needed the database
    assert_each_answered_call_recorded_once(stack, results, timeout=90)
