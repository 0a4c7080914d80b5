"""One call through the gateway: reserve credit, call the provider, relay, settle.

Whatever happens (success, provider error, time-out, client gone) the reservation is
settled in `finally`, and a call that produced nothing costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import orjson
from django.conf import settings

from apigateway import http, quota, sizing
from apigateway.asgi_io import ClientGone, Headers, Send
from apigateway.auth import KeyInfo
from apigateway.calllog import CallLog
from apigateway.catalog import CatalogEntry
from apigateway.errors import API_ERROR, GatewayError
from apigateway.providers import reasoning
from apigateway.providers.base import JSON, StreamTranslator, UpstreamRequest, Usage
from apigateway.quota import Reservation
from apigateway.ratelimit import estimate_tokens, rate_headers
from apigateway.routing import Route
from apigateway.sse import SSEDecoder
from apigateway.surfaces import CHAT, Surface
from billing import pricing
from billing.money import usd_plain
from credit.records import CreditUnavailable
from credit.store import Settlement
from nexeon.loops import spawn

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Call:
    """Everything one request needs after validation."""

    request_id: str
    key: KeyInfo
    entry: CatalogEntry  # the model asked for (each route names the model it serves)
    routes: tuple[Route, ...]  # the configured deployments, in the order to try
    body: JSON
    body_bytes: int
    log: CallLog
    # Sends a whole JSON answer (status, body, headers): app._Response.json.
    respond_json: Callable[[int, bytes, Headers], Awaitable[None]]
    # The API the caller speaks (chat completions, or one translated to and from it).
    surface: Surface = CHAT


def upstream_requests(call: Call, build: Callable[[Route], UpstreamRequest]) -> http.Requests:
    """The call's upstream request for each deployment it may use (the first built now, so
    that an adapter's 400 comes before credit is reserved); its usage record names the
    deployment (and model) tried last, which is the one that served it."""

    def tried(route: Route) -> None:
        call.log.provider = route.provider
        call.log.model = route.entry.id

    return http.Requests(call.routes, build, tried)


async def _answer(
    call: Call,
    headers: Headers,
    reservation: Reservation,
    payload: JSON,
    cost_nanos: int,
    *,
    with_usage: bool = True,
) -> None:
    """Settle a whole answer and send it: the settlement leaves first (see settle)."""
    if cost_nanos > reservation.amount:
        cost_nanos = over_reservation(call, reservation, cost_nanos)
    cost = usd_plain(cost_nanos)  # formatted once, for the body and the header
    body = orjson.dumps(call.surface.with_cost(payload, cost) if with_usage else payload)
    extra = [*headers, (b"x-nexeon-cost", cost.encode())]
    await settle(call, reservation, cost_nanos, answer=lambda: call.respond_json(200, body, extra))


def over_reservation(call: Call, reservation: Reservation, cost_nanos: int) -> int:
    """A call is never charged more than it reserved (sizing.py makes that the most a
    provider can bill, so a cost above it means an estimate was wrong: logged)."""
    logger.error(
        "%s cost %s nano-dollars, more than the %s it reserved (model %s): charged the reservation",
        call.request_id,
        cost_nanos,
        reservation.amount,
        call.entry.id,
    )
    return reservation.amount


def usage_cost(entry: CatalogEntry, usage: Usage) -> int:
    return pricing.token_cost_nanos(
        entry.prices,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
    )


async def settle(
    call: Call,
    reservation: Reservation,
    cost_nanos: int,
    answer: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Charge the call's cost and queue its usage event, in one round trip.

    With `answer` (the client's reply): the settlement is written to Redis, then the client
    is answered, then Redis's acknowledgement is awaited. The usage event has left this
    process before the answer's first byte (a crash after that loses nothing: Redis reads
    what the kernel holds), and the answer does not wait a round trip for it. In a memory
    store, or with the connection to Redis not up, the settlement completes before the
    answer.

    If Redis is unreachable, retry for a couple of seconds; then a call not yet answered
    fails with 503 (nothing charged), and one already answered (a stream, or a reply sent
    after the write) keeps retrying in the background so that its usage is not lost. A
    settlement sent again charges nothing twice (the store remembers the call).
    """
    if cost_nanos > reservation.amount:
        cost_nanos = over_reservation(call, reservation, cost_nanos)
    call.log.cost_nanos = cost_nanos
    event = call.log.event()
    tokens = call.log.usage.total_tokens if call.log.usage else 0
    sent: Settlement | None = None
    if answer is not None and not reservation.in_memory:
        sent = _send(call, reservation, cost_nanos, event, tokens)
    if sent is not None and await sent.leave():
        try:
            await answer()  # type: ignore[misc]  # (sent only with an answer)
        finally:
            await _settled(call, reservation, cost_nanos, event, tokens, sent)
        return
    await _settled(call, reservation, cost_nanos, event, tokens, sent)
    if answer is not None:
        await answer()


def _send(call: Call, reservation: Reservation, cost: int, event: bytes, tokens: int) -> Settlement:
    return quota.send_settlement(
        reservation, call_id=call.request_id, cost_nanos=cost, event=event, tokens_used=tokens
    )


async def _settled(
    call: Call,
    reservation: Reservation,
    cost_nanos: int,
    event: bytes,
    tokens: int,
    sent: Settlement | None,
) -> None:
    """Wait for the settlement (`sent`, if it was started) to be acknowledged, retrying it
    while Redis is unreachable."""
    on_its_way = sent is not None and sent.written
    try:
        for delay in SETTLE_RETRY_DELAYS:
            try:
                if sent is None:
                    sent = _send(call, reservation, cost_nanos, event, tokens)
                await sent.reply()
                quota.settled(reservation)
                if reservation.in_memory:
                    await quota.book_memory_usage(reservation.store)
                return
            except CreditUnavailable:
                sent, on_its_way = None, False
                await asyncio.sleep(delay)
    except asyncio.CancelledError:
        # The server is stopping and its grace period ran out (a stream cut short): the
        # event loop is going away, so settle with a blocking call rather than not at all
        # (unless the settlement is already on its way: Redis runs what it was sent).
        if not on_its_way:
            quota.settle_blocking(
                reservation,
                call_id=call.request_id,
                cost_nanos=cost_nanos,
                event=event,
                tokens_used=tokens,
            )
        raise
    if await quota.book_directly(reservation, call.request_id, cost_nanos, event):
        return
    if call.log.ttfb is None:
        raise quota.credit_service_unavailable()
    task = spawn(_settle_later(call, reservation, cost_nanos, event, tokens))
    _background.add(task)
    task.add_done_callback(_background.discard)


SETTLE_RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8, 1.0)
_background: set[asyncio.Task[Any]] = set()


def settling_later() -> set[asyncio.Task[Any]]:
    """Settlements of answered calls still retrying against an unreachable Redis."""
    return set(_background)


async def _settle_later(
    call: Call, reservation: Reservation, cost_nanos: int, event: bytes, tokens: int
) -> None:
    deadline = time.monotonic() + settings.GATEWAY_SETTLE_RETRY_SECONDS
    try:
        while time.monotonic() < deadline:
            try:
                await _send(call, reservation, cost_nanos, event, tokens).reply()
                quota.settled(reservation)
                logger.info("%s: settled after Redis came back", call.request_id)
                return
            except CreditUnavailable:
                await asyncio.sleep(1.0)
    except asyncio.CancelledError:
        logger.error("%s: usage not recorded, the process stopped: %s", call.request_id, event)
        raise
    logger.error(
        "%s: usage not recorded, Redis unreachable for %ss: %s",
        call.request_id,
        settings.GATEWAY_SETTLE_RETRY_SECONDS,
        event.decode(),
    )


class Outcome:
    """Whatever ends the call (an error for the caller, the caller leaving) goes into
    its usage record before the settlement sends it. (A class, not a generator-based
    contextmanager: two plain calls on every call's path instead of five.)"""

    __slots__ = ("log",)

    def __init__(self, log: CallLog) -> None:
        self.log = log

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: Any, traceback: TracebackType | None
    ) -> Literal[False]:
        if kind is None:
            return False
        log = self.log
        if issubclass(kind, GatewayError):
            log.failed(error.status, error.code or error.type)
        elif issubclass(kind, ClientGone | asyncio.CancelledError):
            log.disconnected = True
            if log.ttfb is None:
                log.failed(499, "client_disconnected")
        elif issubclass(kind, quota.REDIS_ERRORS):
            log.failed(503, API_ERROR)
        elif issubclass(kind, Exception):
            log.failed(500, API_ERROR)
        return False


async def reserve(call: Call, amount_nanos: int, headers: Headers, tokens: int = 0) -> Reservation:
    """Rate limits and credit in one step; the limits' x-ratelimit-* headers join the
    answer's headers."""
    reservation = await quota.reserve(
        key=call.key, amount_nanos=amount_nanos, request_id=call.request_id, tokens=tokens
    )
    headers.extend(rate_headers(reservation.rate))
    return reservation


def counts_tokens(call: Call) -> bool:
    """Whether a TPM limit applies to the call (else its token estimate is not needed)."""
    return bool(call.key.tpm_limit or call.key.org_tpm_limit)


def chat_token_estimate(call: Call) -> int:
    """What the call counts against a TPM limit until it settles (the output only where
    the caller capped it)."""
    if not counts_tokens(call):
        return 0
    asked = call.body.get("max_completion_tokens") or call.body.get("max_tokens")
    n = call.surface.outputs(call.body)
    return estimate_tokens(call.body, max_output_tokens=asked * n if asked else None)


# Called with a callback to run if the client leaves; returns the function that stops watching.
WatchDisconnect = Callable[[Callable[[], None]], Callable[[], None]]


def _chat_bound(call: Call, entry: CatalogEntry) -> tuple[dict[str, Any], int]:
    """A model's chat body, with the cap on output its deployments are sent (adapters read
    it here), and the most that model can bill for the call."""
    surface = call.surface
    cap = surface.output_cap(call.body, entry)
    prompt = surface.prompt_bound(call.body, call.body_bytes, entry)
    output = cap * surface.outputs(call.body)
    most = pricing.max_cost_nanos(entry.prices, prompt_tokens=prompt, completion_tokens=output)
    return {**call.body, "max_completion_tokens": cap}, most


async def chat(call: Call, send: Send, watch: WatchDisconnect, headers: Headers) -> None:
    # Each model that may serve (the caller's `models` add more) has its own cap and
    # prices: the reservation covers the most expensive of them.
    bounds: dict[str, tuple[dict[str, Any], int]] = {}
    for route in call.routes:
        if route.entry.id not in bounds:
            bounds[route.entry.id] = _chat_bound(call, route.entry)
    surface = call.surface
    upstream = upstream_requests(
        call, lambda route: surface.build(route, bounds[route.entry.id][0])
    )
    reservation = await reserve(
        call,
        max(most for _, most in bounds.values()),
        headers,
        chat_token_estimate(call),
    )
    cost = 0
    try:
        with Outcome(call.log):
            if call.body.get("stream"):
                cost = await _chat_stream(call, upstream, send, watch, headers)
                return
            route, data = await http.fetch(upstream)
            payload, usage = surface.parse(route, data, route.entry.id)
            if reasoning.excluded(call.body):
                reasoning.hide(payload)
            call.log.usage = usage
            cost = usage_cost(route.entry, usage)
        await _answer(call, headers, reservation, payload, cost)
        reservation = None  # type: ignore[assignment]  # settled: nothing to release
    finally:
        if reservation is not None:
            await settle(call, reservation, cost or call.log.cost_nanos)


async def _chat_stream(
    call: Call, upstream: http.Requests, send: Send, watch: WatchDisconnect, headers: Headers
) -> int:
    """Relay a stream as it arrives; returns the cost of what the provider produced."""
    call.log.streamed = True
    response = await http.open_response(upstream)
    # Translated for the deployment that answered (a fallback may be another provider
    # family, or serve another of the caller's `models`), and priced for its model.
    entry = response.route.entry
    translator = call.surface.translator(response.route, entry.id, call.body)
    progress = _StreamProgress()
    relay = spawn(_pump(call, response, translator, send, headers, progress))
    left: list[bool] = []

    def gone() -> None:
        left.append(True)
        relay.cancel()  # stop reading, which closes the upstream call

    stop_watching = watch(gone)
    try:
        await relay
    except asyncio.CancelledError:
        if not left:
            raise  # this task itself was cancelled: the server is stopping
        call.log.disconnected = True
        logger.info("%s: client disconnected mid-stream", call.request_id)
    finally:
        stop_watching()
        relay.cancel()  # (still running only if this task itself was cancelled: stopping)
        response.close()
        # Billed from the provider's final counts, or, for a stream that ended early, for
        # all the output it produced so far (see StreamTranslator.billable_usage), relayed
        # or not: a client that leaves while a model thinks pays for the thinking.
        if progress.started or translator.produced:
            call.log.usage = translator.billable_usage(prompt_estimate=call.body_bytes // 4)
            call.log.cost_nanos = usage_cost(entry, call.log.usage)
    return call.log.cost_nanos


class _StreamProgress:
    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started = False


def with_stream_cost(
    call: Call, translator: StreamTranslator, entry: CatalogEntry | None = None
) -> list[JSON]:
    """The stream's closing events, with the call's cost (at the prices of `entry`, the
    model that served; by default the one asked for) where the surface shows it."""
    priced = entry or call.entry
    return call.surface.closing(translator, lambda usage: usd_plain(usage_cost(priced, usage)))


async def _pump(
    call: Call,
    response: http.UpstreamResponse,
    translator: StreamTranslator,
    send: Send,
    headers: Headers,
    progress: _StreamProgress,
) -> None:
    decoder = SSEDecoder()
    surface = call.surface

    async def emit(chunks: list[JSON], final: bool = False) -> None:
        if not progress.started:
            # Our 200 goes out with the provider's first event, so a failure before it can
            # still be an ordinary JSON error.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                        *headers,
                    ],
                }
            )
            progress.started = True
        payload = surface.encode(chunks)
        if final:
            payload += surface.stream_end
        await send({"type": "http.response.body", "body": payload, "more_body": not final})

    try:
        ending: list[JSON] = []  # events that came with the stream's end: one write with it
        while (raw := await response.next_chunk()) is not None:
            chunks = [c for event in decoder.feed(raw) for c in translator.feed(event)]
            if translator.finished:
                ending = chunks
                break
            if chunks:
                await emit(chunks)
        ending += [c for event in decoder.flush() for c in translator.feed(event)]
        await emit(ending + with_stream_cost(call, translator, response.route.entry), final=True)
    except GatewayError as error:
        if not progress.started:
            raise
        # Headers are gone: tell the client in-band, then end the stream.
        call.log.error_code = error.code or error.type
        body = surface.stream_error(error)
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def embeddings(call: Call, headers: Headers) -> None:
    await _priced_by_input(
        call,
        headers,
        lambda route: route.adapter.build_embeddings_request(call.body, route.deployment),
        lambda route, data: route.adapter.parse_embeddings_response(
            data, model=call.entry.id, body=call.body
        ),
    )


async def moderations(call: Call, headers: Headers) -> None:
    await _priced_by_input(
        call,
        headers,
        lambda route: route.adapter.build_moderations_request(call.body, route.deployment),
        lambda route, data: route.adapter.parse_moderations_response(data, model=call.entry.id),
    )


async def _priced_by_input(
    call: Call,
    headers: Headers,
    build: Callable[[Route], UpstreamRequest],
    parse: Callable[[Route, bytes], tuple[JSON, Usage]],
) -> None:
    """A call billed for its input alone (embeddings, moderations), answered whole."""
    upstream = upstream_requests(call, build)
    prompt = sizing.embedding_bound(call.body, call.body_bytes, call.entry.context_window)
    reservation = await reserve(
        call,
        pricing.max_cost_nanos(call.entry.prices, prompt_tokens=prompt, completion_tokens=0),
        headers,
        estimate_tokens(call.body, max_output_tokens=None) if counts_tokens(call) else 0,
    )
    cost = 0
    try:
        with Outcome(call.log):
            route, data = await http.fetch(upstream)
            payload, usage = parse(route, data)
            call.log.usage = usage
            cost = usage_cost(call.entry, usage)
        await _answer(call, headers, reservation, payload, cost)
        reservation = None  # type: ignore[assignment]  # settled: nothing to release
    finally:
        if reservation is not None:
            await settle(call, reservation, cost)


async def images(call: Call, headers: Headers) -> None:
    upstream = upstream_requests(
        call, lambda route: route.adapter.build_images_request(call.body, route.deployment)
    )
    price = pricing.image_cost_nanos(
        call.entry.prices,
        quality=call.body.get("quality") or "standard",
        size=call.body.get("size") or "1024x1024",
        n=call.body.get("n") or 1,
    )
    reservation = await reserve(call, price, headers)
    cost = 0
    try:
        with Outcome(call.log):
            route, data = await http.fetch(upstream)
            payload, _ = route.adapter.parse_images_response(data, model=call.entry.id)
            cost = price
        await _answer(call, headers, reservation, payload, cost, with_usage=False)
        reservation = None  # type: ignore[assignment]  # settled: nothing to release
    finally:
        if reservation is not None:
            await settle(call, reservation, cost)
