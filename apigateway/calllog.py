"""What the usage pipeline learns about each /v1 call: one event per authenticated call to
a POST endpoint (app.POST_ENDPOINTS), whatever its outcome (no prompt or answer contents).

A call that reserved credit sends its event with its settlement (one round trip with the
balance update). A call refused before that (400, 404, 413, 429, 402, 503) sends it on its
own; the error path is not the hot path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson

from apigateway.auth import KeyInfo
from apigateway.providers.base import Usage
from apigateway.quota import record_unsettled

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class CallLog:
    request_id: str
    endpoint: str
    started: float  # unix time
    started_clock: float  # perf_counter, for durations
    key: KeyInfo | None = None
    model: str = ""
    provider: str = ""
    status: int = 200
    error_code: str = ""
    streamed: bool = False
    disconnected: bool = False
    ttfb: float | None = None  # seconds
    usage: Usage | None = None
    cost_nanos: int = 0
    emitted: bool = False

    @classmethod
    def start(cls, request_id: str, endpoint: str) -> CallLog:
        return cls(request_id, endpoint, time.time(), time.perf_counter())

    def first_byte(self) -> None:
        if self.ttfb is None:
            self.ttfb = time.perf_counter() - self.started_clock

    def failed(self, status: int, code: str | None) -> None:
        self.status = status
        self.error_code = code or ""

    def event(self) -> bytes:
        """The event, once: the caller sends it with the settlement or on its own."""
        self.emitted = True
        elapsed = time.perf_counter() - self.started_clock
        usage = self.usage or Usage()
        key = self.key
        return orjson.dumps(
            {
                "request_id": self.request_id,
                "organization_id": key.organization_id if key else None,
                "key_id": key.key_id if key else None,
                "endpoint": self.endpoint,
                "model": self.model,
                "provider": self.provider,
                "status": self.status,
                "error_code": self.error_code,
                "streamed": self.streamed,
                "disconnected": self.disconnected,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cached_tokens": usage.cached_tokens,
                "cost_nanos": self.cost_nanos,
                "ttfb_ms": round((self.ttfb if self.ttfb is not None else elapsed) * 1000, 3),
                "duration_ms": round(elapsed * 1000, 3),
                "at": self.started,
                "description": f"{self.model} via key {key.name}" if key else "",
            }
        )


async def emit_unsettled(log: CallLog) -> None:
    """A call refused before it reserved credit: its event goes on its own."""
    if log.emitted or log.key is None:
        return
    event = log.event()
    try:
        await record_unsettled(log.key.organization_id, event)
    except Exception:
        logger.warning("usage event of refused call %s not recorded", log.request_id)
