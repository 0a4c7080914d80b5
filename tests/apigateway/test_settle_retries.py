"""The settlement when Redis misbehaves: a call not yet answered is refused with 503 and
charged nothing; a stream already delivered keeps retrying until Redis is back; a call
cancelled in the middle of settling (a server stopping) settles with a blocking call."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
import pytest

from apigateway import relay
from apigateway.auth import KeyInfo
from apigateway.calllog import CallLog
from apigateway.errors import GatewayError
from apigateway.quota import RedisQuota
from apigateway.resp import RedisUnavailable
from billing import holds
from billing.balance_cache import balance_key
from usage import pipeline

ORG, START, RESERVE, COST = 4242, 10_000_000, 1_000_000, 1234
KEY = KeyInfo(7, ORG, "k", None, None, (), None, None)


class FlakyQuota(RedisQuota):
    """The real Redis quota, whose settle fails `failures` times (or hangs) first."""

    def __init__(self, failures: int = 0, hang: bool = False) -> None:
        super().__init__()
        self.failures = failures
        self.hang = hang

    async def settle(self, reservation, cost_nanos, event, tokens_used=0) -> None:
        if self.hang:
            await asyncio.Event().wait()
        if self.failures:
            self.failures -= 1
            raise RedisUnavailable("down")
        await super().settle(reservation, cost_nanos, event, tokens_used)


@pytest.fixture
def quota(redis_client, monkeypatch, settings):
    redis_client.set(balance_key(ORG), START)
    monkeypatch.setattr(relay, "SETTLE_RETRY_DELAYS", (0, 0))
    settings.GATEWAY_SETTLE_RETRY_SECONDS = 10
    flaky = FlakyQuota()
    monkeypatch.setattr(relay, "quota_for", lambda reservation: flaky)
    return flaky


def call(delivered: bool) -> SimpleNamespace:
    log = CallLog.start("req_retry", "chat")
    log.key, log.model = KEY, "gpt-4o"
    if delivered:
        log.first_byte()
    return SimpleNamespace(request_id="req_retry", log=log)


async def reserve(quota) -> object:
    return await quota.reserve(key=KEY, amount_nanos=RESERVE, request_id="req_retry")


def state(redis_client) -> tuple[int, int, list]:
    events = [orjson.loads(e) for e in redis_client.lrange(pipeline.QUEUE, 0, -1)]
    return int(redis_client.get(balance_key(ORG))), redis_client.zcard(holds.HOLDS), events


def test_an_unanswered_call_that_cannot_settle_is_503_and_charged_nothing(quota, redis_client):
    quota.failures = 99

    async def scenario():
        reservation = await reserve(quota)
        with pytest.raises(GatewayError) as refused:
            await relay.settle(call(delivered=False), reservation, COST)
        return refused.value

    error = asyncio.run(scenario())
    assert error.status == 503 and "nothing was charged" in error.message
    balance, held, events = state(redis_client)
    assert (balance, held, events) == (START - RESERVE, 1, [])  # the reaper returns the hold


def test_a_delivered_stream_keeps_settling_until_redis_is_back(quota, redis_client):
    quota.failures = 4  # more than the inline retries: the rest happen in the background

    async def scenario():
        reservation = await reserve(quota)
        await relay.settle(call(delivered=True), reservation, COST)
        assert relay._background, "no background retry was scheduled"
        await asyncio.gather(*relay._background)

    asyncio.run(scenario())
    balance, held, events = state(redis_client)
    assert (balance, held) == (START - COST, 0)
    assert [(e["request_id"], e["cost_nanos"]) for e in events] == [("req_retry", COST)]


def test_a_call_cancelled_while_settling_settles_with_a_blocking_call(quota, redis_client):
    quota.hang = True

    async def scenario():
        reservation = await reserve(quota)
        settling = asyncio.ensure_future(relay.settle(call(delivered=True), reservation, COST))
        await asyncio.sleep(0.05)
        settling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await settling

    asyncio.run(scenario())
    balance, held, events = state(redis_client)
    assert (balance, held, len(events)) == (START - COST, 0, 1)
