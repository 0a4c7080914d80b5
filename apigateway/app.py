"""The /v1 ASGI application: a bare ASGI callable, routed past Django's middleware.

Checks run in the documented order: the key (401), the request (413, 408, 400, 404), limits
(429), credits (402); a request refused here never reaches a provider.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from django.conf import settings

from apigateway import (
    account,
    balance,
    http,
    ids,
    model_ids,
    relay,
    routing,
    url_mistakes,
    validation,
)
from apigateway.asgi_io import (
    ClientGone,
    Headers,
    Receive,
    Send,
    header,
    json_headers,
    on_disconnect,
    read_body,
    send_json,
)
from apigateway.auth import KeyInfo, authenticate, credentials
from apigateway.calllog import CallLog, emit_unsettled
from apigateway.catalog import CatalogEntry, snapshot
from apigateway.errors import API_ERROR, GatewayError
from apigateway.legacy_completions import COMPLETIONS
from apigateway.listing import model_object
from apigateway.messages.count_tokens import count_tokens
from apigateway.messages.surface import MessagesSurface
from apigateway.quota import REDIS_ERRORS, count_refused_request, credit_service_unavailable
from apigateway.responses.surface import ResponsesSurface, not_stored
from apigateway.surfaces import CHAT, Surface
from credit import leases
from nexeon.loops import running_loop

if TYPE_CHECKING:
    from apigateway.routing import Route

logger = logging.getLogger("apigateway")

POST_ENDPOINTS = {
    "/v1/chat/completions": ("chat", validation.chat),
    "/v1/embeddings": ("embedding", validation.embeddings),
    "/v1/images/generations": ("image", validation.images),
    "/v1/completions": ("completion", validation.completions),
    "/v1/moderations": ("moderation", validation.moderations),
    # Anthropic's Messages API: its surface checks the request (MessagesSurface.accept).
    "/v1/messages": ("messages", None),
    "/v1/messages/count_tokens": ("count_tokens", None),
    # OpenAI's Responses API: checked as the chat body it translates to (ResponsesSurface).
    "/v1/responses": ("responses", validation.chat),
}
GET_ENDPOINTS = {"/v1/models", "/v1/credits", "/v1/key", "/v1/openapi.json"}
# The OpenAPI description of /v1, served as it is, to anyone (it holds nothing secret).
OPENAPI = Path(__file__).with_name("openapi.json").read_bytes()
ENDPOINT_NAMES = {
    "chat": "chat",
    "embedding": "embeddings",
    "image": "images",
    "completion": "completions",
    "moderation": "moderations",
    "messages": "messages",
    "count_tokens": "count_tokens",
    "responses": "responses",
}
# The catalog mode of the models an endpoint calls, where it is not the endpoint's own.
CATALOG_MODES = {"messages": "chat", "count_tokens": "chat", "responses": "chat"}
# Refusals the reservation itself decided, which also decided whether the request counts
# against the limits (a 402 does, a 429 does not): count_refused_request leaves them alone.
REFUSED_BY_THE_RESERVATION = {402, 429}


# Calls being served by this process, so that a stopping server can let them settle.
_in_flight: set[asyncio.Task[Any]] = set()


async def finish_in_flight(limit: float) -> int:
    """At shutdown, after uvicorn's grace period: wait (at most `limit` seconds) for the
    calls still here, which the server has just cancelled, to settle their credit and
    queue their usage, and for settlements still retrying against an unreachable Redis.
    Returns how many were still running at the end."""
    deadline = running_loop().time() + limit
    pending = {task for task in _in_flight if not task.done()}
    if pending:
        _, pending = await asyncio.wait(pending, timeout=limit)
    retrying = {task for task in relay.settling_later() if not task.done()}
    if retrying:
        left = max(deadline - running_loop().time(), 0.1)
        _, retrying = await asyncio.wait(retrying, timeout=left)  # the rest log their events
    await leases.book.give_back_all()
    return len(pending) + len(retrying)


async def application(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    # No wrapper coroutine between this one and dispatch: every wake-up of the call (the
    # provider's answer, Redis's reply) resumes each level of the stack again.
    if scope["type"] != "http":
        return
    task = asyncio.current_task(running_loop())
    _in_flight.add(task)  # type: ignore[arg-type]  # (an ASGI app runs in a task)
    request_id = ids.request_id()
    headers = [(b"x-request-id", request_id.encode())]
    response = _Response(send, scope.get("extensions", {}).get("nexeon.respond"))
    try:
        await dispatch(scope, receive, response, request_id, headers)
    except ClientGone:
        if response.log is not None and not response.log.emitted:
            response.log.disconnected = True
            response.log.failed(499, "client_disconnected")
    except Exception as exc:
        if isinstance(exc, GatewayError):
            error = exc
        elif isinstance(exc, REDIS_ERRORS):
            logger.warning("%s %s: Redis failed: %r", request_id, scope["path"], exc)
            error = credit_service_unavailable()
        else:
            logger.exception("%s %s %s failed", request_id, scope["method"], scope["path"])
            error = GatewayError(
                500, "The server had an error processing your request.", type=API_ERROR
            )
        if response.log is not None and not response.log.emitted:
            response.log.failed(error.status, error.code or error.type)
        await response.fail(error, headers)
    finally:
        try:
            if response.log is not None and not response.log.emitted:
                if response.log.status not in REFUSED_BY_THE_RESERVATION:
                    # Refused before the limits were checked (400, 404, 408, 413, 503):
                    # every authenticated request to a POST endpoint counts all the same.
                    await count_refused_request(response.log.key)
                await emit_unsettled(response.log)
        finally:
            _in_flight.discard(task)


class _Response:
    """Tracks what was sent, so that a late failure never sends a second response; notes
    the call's first byte for its usage record."""

    __slots__ = ("_respond", "_send", "done", "log", "started", "surface")

    def __init__(
        self, send: Send, respond: Callable[[int, Headers, bytes], None] | None = None
    ) -> None:
        self._send = send
        self._respond = respond  # the server's whole-answer call (apigateway.server), if any
        self.started = False
        self.done = False
        self.log: CallLog | None = None
        self.surface: Surface = CHAT  # whose error shape a failure is sent in

    async def json(self, status: int, body: bytes, headers: Headers) -> None:
        """A whole JSON answer: in one call to the server when it offers one."""
        if self._respond is None or self.started:
            await send_json(self.send, status, body, headers)
            return
        self.started = self.done = True
        if self.log is not None:
            self.log.first_byte()
        self._respond(status, json_headers(body, headers), body)

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            if self.log is not None:
                self.log.first_byte()
        elif not message.get("more_body"):
            self.done = True
        await self._send(message)

    async def fail(self, error: GatewayError, headers: Headers) -> None:
        if not self.started:
            extra = [(k.encode(), v.encode()) for k, v in error.headers.items()]
            body = self.surface.error_body(error)
            await send_json(self._send, error.status, body, [*headers, *extra])
        elif not self.done:  # a stream was under way: end it with an in-band error
            body = self.surface.stream_error(error)
            await self._send({"type": "http.response.body", "body": body, "more_body": False})


async def dispatch(
    scope: dict[str, Any], receive: Receive, response: _Response, request_id: str, headers: Headers
) -> None:
    send = response.send
    path = scope["path"].rstrip("/") or "/"
    method = scope["method"]
    if path.startswith("/v1/messages"):  # every answer from here on in Anthropic's shape
        response.surface = MessagesSurface(request_id)
    endpoint = POST_ENDPOINTS.get(path)
    if path.startswith("/v1/responses/"):  # a stored response: none is
        await authenticate(credentials(scope), scope)
        raise not_stored(path)
    if endpoint is None and url_mistakes.lacks_v1(path):
        raise url_mistakes.missing_v1(scope)
    if endpoint is None and url_mistakes.doubled_v1(path):
        if path.startswith("/v1/v1/messages"):  # an Anthropic SDK: its error shape
            response.surface = MessagesSurface(request_id)
        raise url_mistakes.twice_v1(scope)
    if endpoint is None and path not in GET_ENDPOINTS and not path.startswith("/v1/models/"):
        raise GatewayError(404, f"Invalid URL ({method} {scope['path']})", code="unknown_url")
    expected = "POST" if endpoint else "GET"
    if method != expected:
        raise GatewayError(
            405, f"Method {method} is not allowed for {scope['path']}; use {expected}."
        )
    if path == "/v1/openapi.json":
        await send_json(send, 200, OPENAPI, headers)
        return
    key = await authenticate(credentials(scope), scope)
    if endpoint is None:
        if path == "/v1/credits":
            await send_json(send, 200, orjson.dumps(await account.credits(key)), headers)
        elif path == "/v1/key":
            await send_json(send, 200, orjson.dumps(await account.key_status(key)), headers)
        else:
            await models(path, send, headers)
        return

    mode, validate = endpoint
    log = response.log = CallLog.start(request_id, ENDPOINT_NAMES[mode])
    log.key = key
    body = await read_body(scope, receive, settings.GATEWAY_MAX_BODY_BYTES)
    payload = validation.parse_json(body)
    surface = response.surface
    wanted = None
    if mode == "responses":
        surface = response.surface = ResponsesSurface(payload)
        payload = surface.chat_body  # what the relay sizes and reserves for
    if isinstance(surface, MessagesSurface):
        betas = header(scope, b"anthropic-beta")
        counting = mode == "count_tokens"
        log.model = surface.accept(payload, betas, counting=counting)
        payload = surface.chat_body  # what the relay sizes and reserves for
    else:
        if mode == "chat":
            wanted = validation.routing_request(payload)
        # (only the Messages endpoints have no validator, and their surface checks)
        log.model = validate(payload)  # type: ignore[misc]
    catalog = await snapshot.get()
    entry = model_ids.find(
        log.model,
        catalog,
        allowed=key.allowed_models,
        available=routing.has_routes,
        mode=CATALOG_MODES.get(mode, mode),
    )
    log.model = entry.id  # (an alias's call is the catalog model's: see model_ids)
    if mode == "completion":
        surface = COMPLETIONS
    log.provider = entry.provider
    routes = routing.deployments_for(entry)
    if wanted is not None:
        routes = _requested_routes(catalog, key, entry, routes, payload, wanted)
    elif len(routes) > 1:
        routes = balance.ordered(routes, payload)
    if not routes:
        raise model_ids.not_available(entry.id, entry)
    http.check_available(routes)  # 503 when every deployment rests (circuit open)
    call = relay.Call(
        request_id=request_id,
        key=key,
        entry=entry,
        routes=routes,
        body=payload,
        body_bytes=len(body),
        log=log,
        respond_json=response.json,
        surface=surface,
    )
    if mode in ("chat", "messages", "responses", "completion"):
        await relay.chat(call, send, partial(on_disconnect, scope, receive), headers)
    elif mode == "count_tokens":
        await count_tokens(call, surface, headers)  # type: ignore[arg-type]  # (Messages')
    elif mode == "embedding":
        await relay.embeddings(call, headers)
    elif mode == "moderation":
        await relay.moderations(call, headers)
    else:
        await relay.images(call, headers)


def _requested_routes(
    catalog: dict[str, CatalogEntry],
    key: KeyInfo,
    entry: CatalogEntry,
    routes: tuple[Route, ...],
    payload: dict[str, Any],
    wanted: balance.Preferences,
) -> tuple[Route, ...]:
    """The deployments of `model` and then of each of the caller's `models`, as its
    `provider` preferences filter and order them; a 404 when they leave none."""
    per_model = [routes]
    for name in wanted.models:
        try:
            fallback = model_ids.find(
                name,
                catalog,
                allowed=key.allowed_models,
                available=routing.is_available,
                mode=entry.mode,
            )
        except GatewayError as error:
            error.param = "models"
            raise
        if fallback is not entry:
            per_model.append(routing.deployments_for(fallback))
    chosen = balance.plan(per_model, payload, wanted)
    if not chosen and any(per_model):
        raise GatewayError(
            404,
            f"No deployment of '{entry.id}'"
            + (" or the 'models' listed" if wanted.models else "")
            + " matches the request's 'provider' preferences.",
            param="provider",
            code="no_matching_provider",
        )
    return chosen


async def models(path: str, send: Send, headers: Headers) -> None:
    """Only models with a deployment the operator configured are listed (available now)."""
    entries = await snapshot.get()
    if path == "/v1/models":
        available = [entry for entry in entries.values() if routing.is_available(entry)]
        body = {"object": "list", "data": [model_object(e) for e in available]}
    else:
        model_id = path.removeprefix("/v1/models/")
        body = model_object(
            model_ids.find(model_id, entries, allowed=(), available=routing.is_available)
        )
    await send_json(send, 200, orjson.dumps(body), headers)
