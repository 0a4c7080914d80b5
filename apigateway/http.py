"""The one module that talks to providers: a shared client per process and event loop
(keep-alive pools), each deployment's own time-outs, retries and fallbacks that happen
only before anything reached the caller, and the circuit breakers (apigateway/breaker.py).

The client is apigateway/upstream_client.py rather than httpx or aiohttp, because it adds
less latency to every call (why, and by how much: its docstring and docs/operations.md).
Every transport failure leaves this module as a GatewayError (502, 503 or 504).

A call may go to any deployment of its model (routing.deployments_for, in the order
balance.plan gives the call: its balanced deployments by affinity, then the catalog's
fallbacks, then the caller's other `models`). A connection that cannot be opened or breaks
before the answer, a 429 or a 5xx moves on to the next deployment at once; a deployment
tried again waits an exponential backoff first (the provider's Retry-After when longer, at
most MAX_BACKOFF), and there are at most len(deployments) + UPSTREAM_RETRIES attempts. A
time-out is never retried (504 at once: the provider may still be working on it), nor is
an answer over the size cap (502: it was produced, maybe billed), nor an answer about the
request itself (400, 401, 403, 404...). No free connection to a provider within the
connect deadline (the cap per host, GATEWAY_UPSTREAM_MAX_CONNECTIONS_PER_HOST) moves on to
the next deployment like a refused connection, but is the gateway's own load, not the
provider's failure: 503 with Retry-After, and the breaker is not told. The adapter that
reads the answer is the one of the deployment that gave it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apigateway.breaker import Breakers, breakers
from apigateway.errors import GatewayError, upstream_error
from apigateway.providers.base import UpstreamRequest
from apigateway.routing import Route
from apigateway.upstream_client import (
    Client,
    Response,
    UpstreamBusy,
    UpstreamConnectError,
    UpstreamTLSError,
    UpstreamTooLarge,
)
from nexeon.loops import running_loop

if TYPE_CHECKING:
    from apigateway.demo import LocalResponse

logger = logging.getLogger(__name__)
RETRYABLE_STATUS = {429, 500, 502, 503, 504, 529}
MAX_BACKOFF = 2.0  # seconds; also the cap on a provider's Retry-After
_clients: dict[int, tuple[asyncio.AbstractEventLoop, Client]] = {}


def client() -> Client:
    loop = running_loop()
    found = _clients.get(id(loop))
    if found is not None:
        return found[1]
    created = Client(
        max_connections_per_host=settings.GATEWAY_UPSTREAM_MAX_CONNECTIONS_PER_HOST,
        max_response_bytes=settings.GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES,
    )
    _clients[id(loop)] = (loop, created)
    return created


def reset() -> None:
    """Drop the pooled connections (tests change providers); callable from any thread:
    each client is closed on its own loop."""
    for loop, old in list(_clients.values()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(old.close)
    _clients.clear()


def timed_out(seconds: float) -> GatewayError:
    return upstream_error(504, f"The provider did not answer within {seconds:g} seconds.")


def broken(provider: str) -> GatewayError:
    return upstream_error(502, f"The connection to the {provider} provider broke off.")


def unreachable(provider: str) -> GatewayError:
    return upstream_error(502, f"Could not reach the {provider} provider.")


def untrusted(provider: str) -> GatewayError:
    return upstream_error(
        502,
        f"Could not reach the {provider} provider: the TLS handshake failed "
        "(its certificate was not trusted, or it refused ours).",
    )


def too_large(provider: str, limit: int) -> GatewayError:
    return upstream_error(502, f"The {provider} provider's answer is larger than {limit} bytes.")


def busy(provider: str) -> GatewayError:
    return upstream_error(
        503,
        f"Too many calls to the {provider} provider are in flight; retry shortly.",
        headers={"retry-after": "1"},
    )


def resting(routes: Sequence[Route]) -> GatewayError:
    seconds = breakers.retry_after(route.key for route in routes)
    return upstream_error(
        503,
        f"The model's providers are failing; retry in {seconds} second"
        + ("" if seconds == 1 else "s")
        + ".",
        headers={"retry-after": str(seconds)},
    )


def check_available(routes: Sequence[Route]) -> None:
    """503 (with Retry-After) when every deployment rests, before anything is reserved."""
    for route in routes:
        if breakers.wait(route.key) <= 0:
            return
    raise resting(routes)


class Requests:
    """One call's upstream request for each of its deployments: the first is built at
    once, so that an adapter's own 400 comes before any credit is reserved; a fallback's
    only if it is tried. `tried` hears of each deployment as it is tried."""

    __slots__ = ("_build", "_built", "routes", "tried")

    def __init__(
        self,
        routes: Sequence[Route],
        build: Callable[[Route], UpstreamRequest],
        tried: Callable[[Route], None] | None = None,
    ) -> None:
        self.routes = routes
        self._build = build
        self._built = {0: build(routes[0])}
        self.tried = tried

    def get(self, index: int) -> UpstreamRequest:
        """GatewayError when this deployment's adapter cannot take the request."""
        request = self._built.get(index)
        if request is None:
            request = self._built[index] = self._build(self.routes[index])
        return request


def backoff(retry_after: str, tries: int) -> float:
    """Before trying a deployment again, after `tries` tries of it."""
    try:
        hinted = float(retry_after)  # (an HTTP date is not honoured)
    except ValueError:
        hinted = 0.0
    if not math.isfinite(hinted):
        hinted = MAX_BACKOFF
    doubling: float = 0.2 * 2 ** (tries - 1)  # (int ** int is typed Any: it may be a float)
    return min(max(hinted, doubling), MAX_BACKOFF)


class AttemptPlan:
    """Which deployment to try next and after what wait (pure; see the module docstring).

    The deployments in order, then around again; each at most 1 + retries times and at
    most len(keys) + retries attempts in all. A deployment whose circuit is open is passed
    over (it may be tried later in the call if its rest ends), as is one dropped for this
    call (its adapter cannot take the request)."""

    __slots__ = (
        "_breakers",
        "_cursor",
        "_dropped",
        "_hints",
        "_keys",
        "_left",
        "_retries",
        "_tries",
    )

    def __init__(self, keys: Sequence[str], retries: int, breakers: Breakers) -> None:
        self._keys = keys
        self._retries = max(retries, 0)
        self._left = len(keys) + self._retries
        self._breakers = breakers
        self._cursor = 0
        self._tries: dict[int, int] = {}  # (allocated per call: kept small)
        self._hints: dict[int, str] = {}
        self._dropped: set[int] = set()

    def next(self) -> tuple[int, float] | None:
        """(deployment index, seconds to wait before trying it), or None: give up."""
        if self._left <= 0:
            return None
        count = len(self._keys)
        for step in range(count):
            index = (self._cursor + step) % count
            tries = self._tries.get(index, 0)
            if tries > self._retries or index in self._dropped:
                continue
            if self._breakers.wait(self._keys[index]) > 0:
                continue
            self._cursor = index + 1
            self._left -= 1
            self._tries[index] = tries + 1
            if not tries:
                return index, 0.0
            return index, backoff(self._hints.get(index, ""), tries)
        return None

    def answered(self, index: int, retry_after: str) -> None:
        """The deployment's Retry-After, for the wait before it is tried again."""
        self._hints[index] = retry_after

    def drop(self, index: int) -> None:
        self._dropped.add(index)


class UpstreamResponse:
    """A 2xx answer whose body is still to be read; close() it when done. A time-out or a
    broken connection while reading counts against the deployment's circuit breaker."""

    def __init__(self, response: Response | LocalResponse, route: Route) -> None:
        self._response = response
        self.route = route
        self.adapter = route.adapter
        self.provider = route.provider
        self.status = response.status

    async def next_chunk(self) -> bytes | None:
        """What has arrived of the body (waiting for some), or None at its end."""
        try:
            return await self._response.next_chunk()
        except UpstreamTooLarge as exc:
            breakers.failure(self.route.key)
            raise too_large(self.provider, exc.limit) from None
        except TimeoutError:
            breakers.failure(self.route.key)
            raise timed_out(self.route.read_timeout) from None
        except ConnectionError:
            breakers.failure(self.route.key)
            raise broken(self.provider) from None

    def close(self) -> None:
        self._response.close()  # drops the connection if the body was not fully read


# fetch and open_response hand back _exchange's coroutine itself, not one awaiting it: a
# coroutine level less to resume when the provider answers.


def open_response(requests: Requests) -> Coroutine[Any, Any, UpstreamResponse]:
    """A 2xx answer whose body is still to come (a stream), from the first deployment that
    gives one; or the GatewayError the last answer maps to."""
    return _exchange(requests, whole=False)


def fetch(requests: Requests) -> Coroutine[Any, Any, tuple[Route, bytes]]:
    """A whole 2xx answer and the deployment that gave it. A body cut off on its way is
    retried like a refused connection (nothing has reached the caller yet)."""
    return _exchange(requests, whole=True)


async def _exchange(requests: Requests, *, whole: bool) -> Any:  # see open_response, fetch
    routes = requests.routes
    plan = AttemptPlan([route.key for route in routes], settings.UPSTREAM_RETRIES, breakers)
    upstream = client()
    error: GatewayError | None = None
    while (step := plan.next()) is not None:
        index, delay = step
        route = routes[index]
        try:
            request = requests.get(index)
        except GatewayError as refused:
            logger.info("%s skipped: %s", route.key, refused.message)
            plan.drop(index)
            continue
        if delay:
            await asyncio.sleep(delay)
        if not breakers.acquire(route.key):
            continue  # opened, or another call took its one trial, while we waited
        if requests.tried is not None:
            requests.tried(route)
        try:
            response = await (route.local or upstream).request(
                request.method,
                request.url,
                headers=request.headers,
                body=request.body,
                connect_timeout=route.connect_timeout,
                read_timeout=route.read_timeout,
                tls=route.tls,
            )
            if response.status < 300:
                if not whole:
                    breakers.success(route.key)
                    return UpstreamResponse(response, route)
                try:
                    data = await response.read()
                finally:
                    response.close()
                breakers.success(route.key)
                return route, data
            try:
                data = await response.read()
            except ConnectionError:
                data = b""
            finally:
                response.close()
        except UpstreamConnectError as exc:
            breakers.failure(route.key)
            logger.warning("%s: upstream connection failed: %s", route.key, exc)
            tls_failed = isinstance(exc, UpstreamTLSError)
            error = untrusted(route.provider) if tls_failed else unreachable(route.provider)
            continue
        except UpstreamBusy as exc:
            breakers.release(route.key)  # our own load, not the provider's failure
            logger.warning("%s: %s", route.key, exc)
            error = busy(route.provider)
            plan.drop(index)  # (it was waited for already: no second wait on it)
            continue
        except UpstreamTooLarge as exc:
            breakers.failure(route.key)
            logger.warning("%s: %s", route.key, exc)
            raise too_large(route.provider, exc.limit) from None
        except TimeoutError:
            breakers.failure(route.key)
            raise timed_out(route.read_timeout) from None
        except ConnectionError as exc:  # UpstreamBroken: before or while the answer came
            breakers.failure(route.key)
            logger.warning("%s: upstream connection broke: %s", route.key, exc)
            error = broken(route.provider)
            continue
        except BaseException:
            breakers.release(route.key)  # cancelled: neither a success nor a failure
            raise
        status = response.status
        logger.info("%s answered %s", route.key, status)
        error = route.adapter.map_error(status, data, route.deployment.api_key)
        if status not in RETRYABLE_STATUS:
            breakers.success(route.key)  # it answered: the request itself is at fault
            raise error
        breakers.failure(route.key)
        hint = response.headers.get("retry-after", "")
        plan.answered(index, hint)
        if error.status == 503 and "retry-after" in error.headers:
            error.headers = {**error.headers, "retry-after": _retry_after(hint)}
    raise error or resting(routes)


def _retry_after(hint: str) -> str:
    """The provider's Retry-After passed on to the caller, in whole seconds (1 to 60)."""
    try:
        seconds = float(hint)
    except ValueError:
        return "1"
    return str(min(max(math.ceil(seconds), 1), 60)) if math.isfinite(seconds) else "1"
