"""Credit enforcement across real gateway processes: 200 concurrent calls on one thin
organization, and a gateway killed in the middle of a call."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from decimal import Decimal

import httpx

from accounts.models import User
from accounts.services import api_key_create, organization_create
from billing.models import EntryKind, LedgerEntry
from billing.services import credits_grant
from billing.tasks import return_expired_holds
from tests.apigateway.conftest import gateway
from tests.ledger_check import assert_balance_reconciles, available_nanos, held_nanos
from tests.support import stop_process

MINI = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def thin_organization(amount_nanos: int):
    owner = User.objects.create_user(email="thin@example.com")
    organization = organization_create(name="Thin", owner=owner)
    credits_grant(organization=organization, amount_nanos=amount_nanos, reference="grant:thin")
    key = api_key_create(organization=organization, name="load").plaintext
    return organization, key


async def fire(url: str, key: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{url}/v1/chat/completions",
                    json={**MINI, "max_tokens": 1000},
                    headers={"authorization": f"Bearer {key}"},
                )
                for _ in range(count)
            )
        )


def test_200_concurrent_calls_never_overspend_the_balance(tenant, fake_openai):
    # gpt-4o-mini with max_tokens=1000 reserves ~$0.0006: the balance covers ~5 at a time,
    # while 200 calls arrive together at two gateway processes.
    organization, key = thin_organization(3_000_000)
    fake_openai.latency = 0.3
    lowest = []
    stop = threading.Event()

    def watch_balance() -> None:
        while not stop.is_set():
            value = available_nanos(organization.pk)
            if value is not None:
                lowest.append(value)
            time.sleep(0.002)

    with gateway(fake_openai) as (url, _):
        watcher = threading.Thread(target=watch_balance)
        watcher.start()
        try:
            responses = asyncio.run(fire(url, key, 200))
        finally:
            stop.set()
            watcher.join()

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 402}, statuses
    succeeded = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 402]
    assert 1 <= len(succeeded) < 200 and refused
    assert all(r.json()["error"]["type"] == "insufficient_quota" for r in refused)
    assert len(fake_openai.requests) == len(succeeded)  # a 402 never reached the provider
    assert lowest and min(lowest) >= 0  # reservations never took the balance below zero

    spent = sum(int(Decimal(r.headers["x-nexeon-cost"]) * 10**9) for r in succeeded)
    final = assert_balance_reconciles(organization.pk)
    assert final == 3_000_000 - spent >= 0
    booked = LedgerEntry.objects.filter(organization=organization, kind=EntryKind.USAGE)
    assert booked.count() == len(succeeded)


def test_a_gateway_killed_mid_call_strands_no_credit(tenant, fake_openai, celery_worker):
    """SIGKILL while the provider is answering: nothing is charged, and the credit held for
    the call returns once its hold expires (the beat task, run here by a real worker)."""
    organization = tenant.organization
    before = assert_balance_reconciles(organization.pk)
    fake_openai.latency = 30
    with gateway(fake_openai, workers=1, GATEWAY_HOLD_SECONDS="2") as (url, process):
        outcome: list[BaseException] = []

        def call() -> None:
            try:
                httpx.post(
                    f"{url}/v1/chat/completions",
                    json=MINI,
                    headers={"authorization": f"Bearer {tenant.key}"},
                    timeout=60,
                )
            except httpx.TransportError as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 10
        while held_nanos(organization.pk) == 0:
            assert time.monotonic() < deadline, "the call never reserved credit"
            time.sleep(0.05)
        held = held_nanos(organization.pk)
        assert available_nanos(organization.pk) == before - held
        stop_process(process, signal.SIGKILL)
        caller.join(timeout=10)
        assert outcome, "the caller should have lost its connection"

    time.sleep(2.1)  # past the hold's deadline
    return_expired_holds.delay()
    deadline = time.monotonic() + 20
    while held_nanos(organization.pk):
        assert time.monotonic() < deadline, "the worker did not return the hold"
        time.sleep(0.1)
    assert available_nanos(organization.pk) == before
    assert not LedgerEntry.objects.filter(kind=EntryKind.USAGE).exists()
    assert assert_balance_reconciles(organization.pk) == before


def test_a_call_longer_than_its_hold_keeps_it_while_its_process_lives(tenant, fake_openai):
    """A living process pushes its holds' deadlines back: a call running past
    GATEWAY_HOLD_SECONDS is not taken for dead by the reaper, so its credit stays held
    until it settles (else the balance could be spent twice)."""
    from credit.stores import current as credit_store

    organization = tenant.organization
    before = assert_balance_reconciles(organization.pk)
    fake_openai.latency = 3
    with gateway(fake_openai, workers=1, GATEWAY_HOLD_SECONDS="1") as (url, _):
        answer: list[httpx.Response] = []
        caller = threading.Thread(
            target=lambda: answer.append(
                httpx.post(
                    f"{url}/v1/chat/completions",
                    json=MINI,
                    headers={"authorization": f"Bearer {tenant.key}"},
                    timeout=30,
                )
            )
        )
        caller.start()
        deadline = time.monotonic() + 10
        while held_nanos(organization.pk) == 0:
            assert time.monotonic() < deadline, "the call never reserved credit"
            time.sleep(0.05)
        reaped = 0
        while caller.is_alive():  # the reaper, as often as it likes, past the first deadline
            reaped += credit_store().reap()
            time.sleep(0.2)
        caller.join()
    assert reaped == 0
    assert answer[0].status_code == 200
    cost = int(Decimal(answer[0].headers["x-nexeon-cost"]) * 10**9)
    assert assert_balance_reconciles(organization.pk) == before - cost
