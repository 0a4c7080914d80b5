"""A whole answer leaves after its settlement was written to Redis, without waiting for
Redis's acknowledgement; a gateway killed before that acknowledgement loses nothing.

The gateway runs in its own process, talking to Redis through a proxy that passes commands
at once and holds every reply back for a while."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import orjson
from django.conf import settings

from tests.apigateway.conftest import gateway
from tests.ledger_check import available_nanos
from tests.support import open_holds, queued_usage

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
HOLD_BACK = 1.5  # seconds each Redis reply waits in the proxy


class SlowReplies:
    """A TCP proxy to Redis: commands go through at once, replies `delay` seconds later."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.delay = 0.0
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(5)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()
        server.close()

    async def _serve(self, client_reader, client_writer) -> None:
        redis_reader, redis_writer = await asyncio.open_connection(*self.target)

        async def commands() -> None:
            while data := await client_reader.read(65536):
                redis_writer.write(data)
            redis_writer.close()

        async def replies() -> None:
            while data := await redis_reader.read(65536):
                # In order: equal delays from increasing times keep the replies' sequence.
                self.loop.call_later(self.delay, _write, client_writer, data)

        await asyncio.gather(commands(), replies(), return_exceptions=True)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    if not writer.is_closing():
        writer.write(data)


@contextmanager
def slow_redis() -> Iterator[tuple[SlowReplies, str]]:
    url = urlsplit(settings.REDIS_URL)
    proxy = SlowReplies((url.hostname, url.port or 6379))
    try:
        yield proxy, f"redis://127.0.0.1:{proxy.port}{url.path}"
    finally:
        proxy.close()


def held(redis_client, request_id: str) -> list[bytes]:
    return [m for m in open_holds(redis_client) if m.endswith(f":hold:{request_id}".encode())]


def queued(redis_client, request_id: str) -> list[tuple[dict, int]]:
    entries = queued_usage(redis_client)
    events = ((orjson.loads(fields[b"e"]), int(fields[b"c"])) for _, fields in entries)
    return [(event, charge) for event, charge in events if event["request_id"] == request_id]


def test_the_answer_does_not_wait_for_the_settlement_and_a_crash_after_it_loses_nothing(
    tenant, fake_openai, redis_client
):
    with (
        slow_redis() as (proxy, redis_url),
        gateway(
            fake_openai,
            workers=1,
            REDIS_URL=redis_url,
            GATEWAY_KEY_CACHE_SECONDS="60",
            GATEWAY_LEASE_SECONDS="0",  # every call reserves (and waits for Redis) on its own
        ) as (url, process),
    ):
        first = tenant.post(
            "/chat/completions", CHAT, url=url
        )  # connects, loads balance and scripts
        assert first.status_code == 200
        # Its settlement is not waited for: read the balance once it has landed, or
        # the first call's hold is counted as spent.
        deadline = time.monotonic() + 10
        while held(redis_client, first.headers["x-request-id"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held(redis_client, first.headers["x-request-id"]) == []
        balance = available_nanos(tenant.organization.pk)

        proxy.delay = HOLD_BACK
        started = time.monotonic()
        answer = tenant.post("/chat/completions", CHAT, url=url)
        elapsed = time.monotonic() - started
        # Both held-back replies: the reservation's (waited for: nothing goes upstream
        # before it) and the settlement's (not waited for). Awaiting both takes 2 x 1.5 s.
        assert answer.status_code == 200
        assert HOLD_BACK <= elapsed < 2 * HOLD_BACK - 0.4, elapsed
        request_id = answer.headers["x-request-id"]

        # The settlement's reply is still in the proxy, and the gateway dies.
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)

    # Redis ran the settlement all the same: hold released, cost charged once, event queued.
    assert held(redis_client, request_id) == []
    cost = round(float(answer.headers["x-nexeon-cost"]) * 10**9)
    assert cost > 0
    assert available_nanos(tenant.organization.pk) == balance - cost
    [(event, charge)] = queued(redis_client, request_id)
    assert (event["status"], event["cost_nanos"], charge) == (200, cost, cost)
