"""The upstream killed while calls flow, with the gateway as a real process: calls move to
the model's fallback deployment (nothing refused, nothing charged twice), the dead one's
breaker opens, and once the provider is back it serves again, without a gateway restart.
Without a fallback, the outage is a 502, never a 500 or a hang."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson

from accounts.services import organization_limits_update
from apigateway.models import CatalogModel
from billing.models import EntryKind, LedgerEntry
from tests.apigateway.conftest import UPSTREAM_KEY, gateway
from tests.fakes import process as fake_process
from tests.support import free_port, stop_process
from usage.models import UsageRecord
from usage.pipeline import drain

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "count me"}]}


def load(url: str, key: str, stop: threading.Event, results: list, workers: int = 6) -> None:
    """Calls back to back from `workers` threads until `stop`; results arrive as they come."""

    def run() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                try:
                    answer = client.post(
                        f"{url}/v1/chat/completions",
                        json=CHAT,
                        headers={"authorization": f"Bearer {key}"},
                    )
                    results.append((answer.status_code, answer.headers.get("x-request-id", "")))
                except httpx.TransportError:
                    results.append((0, ""))

    with ThreadPoolExecutor(workers) as pool:
        for _ in range(workers):
            pool.submit(run)


def serving_with_primary(fake_openai, primary_port: int):
    """The gateway in its own process: "primary" is the killable fake, "backup" the
    session's fake OpenAI; breakers open after 3 failures and rest 2 s."""
    providers = {
        "primary": {"base_url": f"http://127.0.0.1:{primary_port}/v1", "api_key": UPSTREAM_KEY},
        "backup": {"base_url": f"{fake_openai.base_url}/v1", "api_key": UPSTREAM_KEY},
    }
    return gateway(
        fake_openai,
        workers=1,
        NEXEON_PROVIDERS=orjson.dumps(providers).decode(),
        GATEWAY_BREAKER_FAILURES="3",
        GATEWAY_BREAKER_REST_SECONDS="2",
        UPSTREAM_CONNECT_TIMEOUT="1",
    )


def providers_of(request_ids: list[str]) -> list[str]:
    drain()
    found = dict(
        UsageRecord.objects.filter(request_id__in=request_ids).values_list("request_id", "provider")
    )
    return [found.get(request_id, "") for request_id in request_ids]


def test_the_upstream_killed_while_calls_flow(tenant, fake_openai):
    organization_limits_update(organization=tenant.organization, plan="unlimited")  # load
    port = free_port()
    CatalogModel.objects.filter(public_id="gpt-4o-mini").update(
        provider="primary", fallbacks=[{"provider": "backup", "upstream_model": "gpt-4o-mini"}]
    )
    primary = fake_process.start("openai", port, UPSTREAM_KEY, latency=0.02)
    try:
        with serving_with_primary(fake_openai, port) as (url, _):
            stop = threading.Event()
            results: list[tuple[int, str]] = []
            flow = threading.Thread(target=load, args=(url, tenant.key, stop, results))
            flow.start()
            time.sleep(1.5)
            before_kill = len(results)
            stop_process(primary, signal.SIGKILL)  # mid-call: connections reset
            time.sleep(2)
            during = len(results)
            primary = fake_process.start("openai", port, UPSTREAM_KEY, latency=0.02)
            time.sleep(4)  # the breaker's rest (2 s) passes; a trial call closes it
            stop.set()
            flow.join()
    finally:
        stop_process(primary)

    statuses = [status for status, _ in results]
    assert set(statuses) == {200}, sorted(set(statuses))  # the fallback took every call
    assert before_kill > 10 and during > before_kill + 10
    request_ids = [request_id for _, request_id in results]
    served_by = providers_of(request_ids)
    assert served_by[:5] == ["primary"] * 5
    assert "backup" in served_by[before_kill:during]  # the outage went to the fallback
    assert served_by[-5:] == ["primary"] * 5  # and the primary is back, no restart
    # Each answered call is recorded and charged exactly once.
    charged = LedgerEntry.objects.filter(
        kind=EntryKind.USAGE, reference__in=[f"usage:{r}" for r in request_ids]
    ).count()
    assert charged == len(request_ids)


def test_without_a_fallback_the_outage_is_a_502_and_service_resumes(tenant, fake_openai):
    port = free_port()
    CatalogModel.objects.filter(public_id="gpt-4o-mini").update(provider="primary", fallbacks=[])
    primary = fake_process.start("openai", port, UPSTREAM_KEY)
    headers = {"authorization": f"Bearer {tenant.key}"}
    try:
        with serving_with_primary(fake_openai, port) as (url, _):

            def status() -> int:
                return httpx.post(
                    f"{url}/v1/chat/completions", json=CHAT, headers=headers, timeout=30
                ).status_code

            assert status() == 200
            stop_process(primary, signal.SIGKILL)
            outage = [status() for _ in range(5)]
            primary = fake_process.start("openai", port, UPSTREAM_KEY)
            time.sleep(2.5)  # the breaker (opened after 3 failures) rests 2 s
            assert status() == 200
    finally:
        stop_process(primary)
    assert set(outage) <= {502, 503}, outage  # refused / resting, never a 500
    assert 502 in outage
