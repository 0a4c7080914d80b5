"""The settlement when Redis misbehaves: a call not yet answered is refused with 503 and
charged nothing; a stream already delivered keeps retrying until Redis is back; a call
cancelled in the middle of settling (a server stopping) settles with a blocking call."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
import pytest

from apigateway import quota as gateway_quota
from apigateway import relay
from apigateway.auth import KeyInfo
from apigateway.calllog import CallLog
from apigateway.errors import GatewayError
from credit.records import CreditUnavailable, LedgerFigures
from credit.stores import redis_store
from tests.support import queued_usage

ON_BOTH = pytest.mark.parametrize("money_redis", ["redis", "cluster"], indirect=True)
ORG, START, RESERVE, COST = 4242, 10_000_000, 1_000_000, 1234
KEY = KeyInfo(7, ORG, "k", None, None, (), None, None)


class Flaky:
    """The real settlement, which fails `failures` times (or hangs) first: a failed attempt
    never reaches Redis."""

    def __init__(self) -> None:
        self.failures = 0
        self.hang = False
        self.real = gateway_quota.send_settlement

    def __call__(self, *args, **kwargs):
        if self.hang:
            return Never()
        if self.failures:
            self.failures -= 1
            return Down()
        return self.real(*args, **kwargs)


class Down:
    written = False

    async def leave(self) -> bool:
        return False

    async def reply(self) -> int:
        raise CreditUnavailable("down")


class Never(Down):
    async def reply(self) -> int:
        await asyncio.Event().wait()
        return 0


@pytest.fixture
def quota(money_redis, monkeypatch, settings):
    asyncio.run(redis_store().load_balance(ORG, LedgerFigures(START, 1, 0)))
    monkeypatch.setattr(relay, "SETTLE_RETRY_DELAYS", (0, 0))
    settings.GATEWAY_SETTLE_RETRY_SECONDS = 10
    settings.GATEWAY_LEASE_SECONDS = 0
    flaky = Flaky()
    monkeypatch.setattr(gateway_quota, "send_settlement", flaky)
    return flaky


def call(delivered: bool) -> SimpleNamespace:
    log = CallLog.start("req_retry", "chat")
    log.key, log.model = KEY, "gpt-4o"
    if delivered:
        log.first_byte()
    return SimpleNamespace(request_id="req_retry", log=log, entry=SimpleNamespace(id="gpt-4o"))


async def reserve(quota) -> object:
    return await gateway_quota.reserve(
        key=KEY, amount_nanos=RESERVE, request_id="req_retry", tokens=0
    )


def state(redis_client) -> tuple[int, int, list]:
    credit = redis_store().credit_state(ORG)
    entries = queued_usage(redis_client)
    events = [(orjson.loads(fields[b"e"]), int(fields[b"c"])) for _, fields in entries]
    return credit.available, credit.held, events


@ON_BOTH
def test_an_unanswered_call_that_cannot_settle_is_503_and_charged_nothing(quota, money_redis):
    quota.failures = 99

    async def scenario():
        reservation = await reserve(quota)
        with pytest.raises(GatewayError) as refused:
            await relay.settle(call(delivered=False), reservation, COST)
        return refused.value

    error = asyncio.run(scenario())
    assert error.status == 503 and "nothing was charged" in error.message
    balance, held, events = state(money_redis)
    assert (balance, held, events) == (START - RESERVE, RESERVE, [])  # the reaper returns it


@ON_BOTH
def test_a_delivered_stream_keeps_settling_until_redis_is_back(quota, money_redis):
    quota.failures = 4  # more than the inline retries: the rest happen in the background

    async def scenario():
        reservation = await reserve(quota)
        await relay.settle(call(delivered=True), reservation, COST)
        assert relay._background, "no background retry was scheduled"
        await asyncio.gather(*relay._background)

    asyncio.run(scenario())
    balance, held, events = state(money_redis)
    assert (balance, held) == (START - COST, 0)
    assert [(e["request_id"], charge) for e, charge in events] == [("req_retry", COST)]


@ON_BOTH
def test_a_call_cancelled_while_settling_settles_with_a_blocking_call(quota, money_redis):
    quota.hang = True

    async def scenario():
        reservation = await reserve(quota)
        settling = asyncio.ensure_future(relay.settle(call(delivered=True), reservation, COST))
        await asyncio.sleep(0.05)
        settling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await settling

    asyncio.run(scenario())
    balance, held, events = state(money_redis)
    assert (balance, held, len(events)) == (START - COST, 0, 1)


class ReplyLost:
    """Redis ran the settlement, but the connection broke before its reply came back."""

    def __init__(self, real) -> None:
        self.real = real
        self.written = real.written

    async def leave(self) -> bool:
        return await self.real.leave()

    async def reply(self) -> int:
        await self.real.reply()
        raise CreditUnavailable("the connection broke before the reply")


@ON_BOTH
def test_a_settlement_whose_reply_was_lost_is_sent_again_and_charges_once(
    quota, money_redis, monkeypatch
):
    sent = []

    def lose_the_first_reply(*args, **kwargs):
        settlement = quota.real(*args, **kwargs)
        sent.append(settlement)
        return ReplyLost(settlement) if len(sent) == 1 else settlement

    monkeypatch.setattr(gateway_quota, "send_settlement", lose_the_first_reply)

    async def scenario():
        reservation = await reserve(quota)
        await relay.settle(call(delivered=True), reservation, COST)

    asyncio.run(scenario())
    assert len(sent) == 2  # sent again after the lost reply
    balance, held, events = state(money_redis)
    assert (balance, held) == (START - COST, 0)
    assert [charge for _, charge in events] == [COST]
