"""The one module that talks to providers: a shared client per process (keep-alive pool),
explicit timeouts, and retries that happen only before anything reached the caller.

aiohttp, not httpx: measured on this gateway's hot path (README, Performance), httpx
0.28's pool spent a fifth of the CPU checking idle connections on every request.
Every transport failure leaves this module as a GatewayError (502 or 504).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
from django.conf import settings

from apigateway.errors import GatewayError, upstream_error
from apigateway.providers.base import Provider, UpstreamRequest

logger = logging.getLogger(__name__)
RETRYABLE_STATUS = {429, 500, 502, 503, 504, 529}
_sessions: dict[int, tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}


def session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    found = _sessions.get(id(loop))
    if found is not None and not found[1].closed:
        return found[1]
    created = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1000, ttl_dns_cache=300, keepalive_timeout=30),
        timeout=aiohttp.ClientTimeout(
            total=None,
            connect=settings.UPSTREAM_CONNECT_TIMEOUT,
            sock_read=settings.UPSTREAM_TIMEOUT,  # to the first byte, and between bytes
        ),
        auto_decompress=True,
        trust_env=False,
        skip_auto_headers=("User-Agent",),
    )
    _sessions[id(loop)] = (loop, created)
    return created


def reset() -> None:
    """Close the sessions (tests change timeouts); the next call builds a new one.

    Callable from any thread: each session is closed on its own loop."""
    for loop, old in list(_sessions.values()):
        if not loop.is_closed():
            asyncio.run_coroutine_threadsafe(old.close(), loop)
    _sessions.clear()


def timed_out() -> GatewayError:
    return upstream_error(
        504, f"The provider did not answer within {settings.UPSTREAM_TIMEOUT:g} seconds."
    )


def broken(provider: str) -> GatewayError:
    return upstream_error(502, f"The connection to the {provider} provider broke off.")


class UpstreamResponse:
    """A 2xx answer whose body is still to be read; close() it when done."""

    def __init__(self, response: aiohttp.ClientResponse, provider: str) -> None:
        self._response = response
        self.provider = provider
        self.status = response.status

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError:
            raise timed_out() from None
        except aiohttp.ClientError:
            raise broken(self.provider) from None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise timed_out() from None
        except aiohttp.ClientError:
            raise broken(self.provider) from None

    def close(self) -> None:
        self._response.close()  # drops the connection if the body was not fully read


async def open_response(adapter: Provider, request: UpstreamRequest) -> UpstreamResponse:
    """Send, retrying connection failures, 429 and 5xx; a time-out is never retried.

    Returns a 2xx response, or raises the GatewayError the provider's last answer maps to.
    """
    client = session()
    attempts = 1 + max(settings.UPSTREAM_RETRIES, 0)
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = await client.request(
                request.method, request.url, headers=request.headers, data=request.body
            )
        except aiohttp.ConnectionTimeoutError:
            if last:
                raise timed_out() from None
            continue
        except TimeoutError:
            raise timed_out() from None
        except aiohttp.ClientError as exc:
            logger.warning("%s: upstream connection failed: %s", adapter.name, type(exc).__name__)
            if last:
                raise upstream_error(502, f"Could not reach the {adapter.name} provider.") from None
            await asyncio.sleep(0.1 * 2**attempt)
            continue
        if response.status < 300:
            return UpstreamResponse(response, adapter.name)
        try:
            data = await response.read()
        except TimeoutError:
            raise timed_out() from None
        except aiohttp.ClientError:
            data = b""
        finally:
            response.release()
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
