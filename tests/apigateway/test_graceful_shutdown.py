"""A gateway worker told to stop (SIGTERM, as docker and systemd do) takes no new calls,
finishes the streams in flight within its grace period, records their usage, then exits."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from tests.apigateway.conftest import UPSTREAM_KEY
from tests.support import manage_env, start_nexeon, stop_process, test_database_url
from usage import pipeline
from usage.models import UsageRecord

STREAM = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": " ".join(f"w{i}" for i in range(12))}],
    "stream": True,
}


def gateway_env(fake_openai) -> dict[str, str]:
    return manage_env(
        DATABASE_URL=test_database_url(),
        OPENAI_BASE_URL=f"{fake_openai.base_url}/v1",
        OPENAI_API_KEY=UPSTREAM_KEY,
    )


def read_stream(url: str, key: str, out: dict) -> None:
    try:
        _read_stream(url, key, out)
    except httpx.TransportError as error:  # a stream cut by the server
        out["error"] = error


def _read_stream(url: str, key: str, out: dict) -> None:
    lines = out["lines"] = []
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        json=STREAM,
        headers={"authorization": f"Bearer {key}"},
        timeout=60,
    ) as response:
        out["request_id"] = response.headers["x-request-id"]
        for line in response.iter_lines():
            if line:
                lines.append(line)
                out["started"].set()


def test_a_stopped_worker_finishes_its_streams_then_exits(tenant, fake_openai):
    fake_openai.chunk_delay = 0.25  # ~15 events: a stream of about 4 s
    url, process = start_nexeon(gateway_env(fake_openai), grace=20)
    try:
        out: dict = {"started": threading.Event()}
        reader = threading.Thread(target=read_stream, args=(url, tenant.key, out))
        reader.start()
        assert out["started"].wait(10), "the stream did not start"
        os.killpg(process.pid, signal.SIGTERM)
        stopped_at = time.monotonic()
        time.sleep(0.3)
        with pytest.raises(httpx.TransportError):  # no new calls once stopping
            httpx.post(
                f"{url}/v1/chat/completions",
                json={**STREAM, "stream": False},
                headers={"authorization": f"Bearer {tenant.key}"},
                timeout=5,
            )
        reader.join(30)
        assert out["lines"][-1] == "data: [DONE]"  # the stream in flight was finished
        text = "".join(line for line in out["lines"] if '"content"' in line)
        assert "w11" in text
        process.wait(timeout=20)
        assert time.monotonic() - stopped_at < 20
        assert process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        stop_process(process, signal.SIGKILL)
    pipeline.drain()
    record = UsageRecord.objects.get(request_id=out["request_id"])
    assert record.streamed and record.status == 200 and not record.client_disconnected


def test_a_stream_longer_than_the_grace_period_is_cut_and_billed_for_what_was_sent(
    tenant, fake_openai
):
    fake_openai.chunk_delay = 0.5  # ~8 s of stream, 1 s of grace
    url, process = start_nexeon(gateway_env(fake_openai), grace=1)
    try:
        out: dict = {"started": threading.Event()}
        reader = threading.Thread(target=read_stream, args=(url, tenant.key, out))
        reader.start()
        assert out["started"].wait(10)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        reader.join(15)
    finally:
        stop_process(process, signal.SIGKILL)
    assert "error" in out and out["lines"][-1] != "data: [DONE]"  # cut short
    # What the provider produced until the cut is billed and recorded; no credit stays held
    # (the tenant fixture checks the ledger against Redis afterwards).
    pipeline.drain()
    record = UsageRecord.objects.get(request_id=out["request_id"])
    assert record.streamed and record.cost_nanos > 0
