"""The one module that talks to providers: a shared client per process and event loop
(keep-alive pools), explicit timeouts, and retries that happen only before anything
reached the caller.

The client is apigateway/upstream_client.py, chosen by measurement (README, Performance):
httpx 0.28's pool spent a fifth of the CPU checking idle connections on every request,
and aiohttp's response path ran ~0.5 ms slower than a bare asyncio Protocol after the
idle wait that every call has. Every transport failure leaves this module as a
GatewayError (502 or 504).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from django.conf import settings

from apigateway.errors import GatewayError, upstream_error
from apigateway.providers.base import Provider, UpstreamRequest
from apigateway.upstream_client import Client, Response, UpstreamBroken, UpstreamConnectError

logger = logging.getLogger(__name__)
RETRYABLE_STATUS = {429, 500, 502, 503, 504, 529}
_clients: dict[int, tuple[asyncio.AbstractEventLoop, Client]] = {}


def client() -> Client:
    loop = asyncio.get_running_loop()
    found = _clients.get(id(loop))
    if found is not None:
        return found[1]
    created = Client()
    _clients[id(loop)] = (loop, created)
    return created


def reset() -> None:
    """Drop the pooled connections (tests change providers); callable from any thread:
    each client is closed on its own loop."""
    for loop, old in list(_clients.values()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(old.close)
    _clients.clear()


def timed_out() -> GatewayError:
    return upstream_error(
        504, f"The provider did not answer within {settings.UPSTREAM_TIMEOUT:g} seconds."
    )


def broken(provider: str) -> GatewayError:
    return upstream_error(502, f"The connection to the {provider} provider broke off.")


class UpstreamResponse:
    """A 2xx answer whose body is still to be read; close() it when done."""

    def __init__(self, response: Response, provider: str) -> None:
        self._response = response
        self.provider = provider
        self.status = response.status

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError:
            raise timed_out() from None
        except (UpstreamBroken, ConnectionError):
            raise broken(self.provider) from None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.chunks():
                yield chunk
        except TimeoutError:
            raise timed_out() from None
        except (UpstreamBroken, ConnectionError):
            raise broken(self.provider) from None

    def close(self) -> None:
        self._response.close()  # drops the connection if the body was not fully read


async def open_response(adapter: Provider, request: UpstreamRequest) -> UpstreamResponse:
    """Send, retrying connection failures, 429 and 5xx; a time-out is never retried.

    Returns a 2xx response, or raises the GatewayError the provider's last answer maps to.
    """
    upstream = client()
    attempts = 1 + max(settings.UPSTREAM_RETRIES, 0)
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = await upstream.request(
                request.method,
                request.url,
                headers=request.headers,
                body=request.body,
                connect_timeout=settings.UPSTREAM_CONNECT_TIMEOUT,
                read_timeout=settings.UPSTREAM_TIMEOUT,
            )
        except UpstreamConnectError as exc:
            logger.warning("%s: upstream connection failed: %s", adapter.name, exc)
            if last:
                raise upstream_error(502, f"Could not reach the {adapter.name} provider.") from None
            await asyncio.sleep(0.1 * 2**attempt)
            continue
        except TimeoutError:
            raise timed_out() from None
        except UpstreamBroken as exc:
            logger.warning("%s: upstream connection broke: %s", adapter.name, exc)
            if last:
                raise broken(adapter.name) from None
            await asyncio.sleep(0.1 * 2**attempt)
            continue
        if response.status < 300:
            return UpstreamResponse(response, adapter.name)
        try:
            data = await response.read()
        except TimeoutError:
            raise timed_out() from None
        except (UpstreamBroken, ConnectionError):
            data = b""
        finally:
            response.close()
        error = adapter.map_error(response.status, data)
        logger.info("%s answered %s", adapter.name, response.status)
        if response.status not in RETRYABLE_STATUS or last:
            raise error
        await asyncio.sleep(_backoff(response.headers.get("retry-after", ""), attempt))
    raise AssertionError("unreachable")


def _backoff(retry_after: str, attempt: int) -> float:
    try:
        hinted = float(retry_after)
    except ValueError:
        hinted = 0.0
    return min(max(hinted, 0.2 * 2**attempt), 2.0)
