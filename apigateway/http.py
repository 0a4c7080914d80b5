"""The one module that talks to providers: a shared httpx client per process (keep-alive
pool), explicit timeouts, and retries that happen only before anything reached the caller.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from django.conf import settings

from apigateway.errors import GatewayError, upstream_error
from apigateway.providers.base import Provider, UpstreamRequest

logger = logging.getLogger(__name__)
RETRYABLE_STATUS = {429, 500, 502, 503, 504, 529}
_clients: dict[int, httpx.AsyncClient] = {}


def client() -> httpx.AsyncClient:
    loop_id = id(asyncio.get_running_loop())
    found = _clients.get(loop_id)
    if found is None:
        found = _clients[loop_id] = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.UPSTREAM_TIMEOUT, connect=settings.UPSTREAM_CONNECT_TIMEOUT
            ),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
            follow_redirects=False,
            trust_env=False,
        )
    return found


def timed_out() -> GatewayError:
    return upstream_error(
        504, f"The provider did not answer within {settings.UPSTREAM_TIMEOUT:g} seconds."
    )


async def open_response(
    adapter: Provider, request: UpstreamRequest, *, stream: bool
) -> httpx.Response:
    """Send, retrying connection failures, 429 and 5xx; a time-out is never retried.

    Returns a 2xx response whose body is still to be read (the caller closes it), or raises
    the GatewayError that the provider's last answer maps to.
    """
    http = client()
    attempts = 1 + max(settings.UPSTREAM_RETRIES, 0)
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = await http.send(
                http.build_request(
                    request.method, request.url, headers=request.headers, content=request.body
                ),
                stream=stream,
            )
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout) and not last:
                continue
            raise timed_out() from None
        except httpx.TransportError as exc:
            logger.warning("%s: upstream connection failed: %s", adapter.name, type(exc).__name__)
            if last:
                raise upstream_error(502, f"Could not reach the {adapter.name} provider.") from None
            await asyncio.sleep(0.1 * 2**attempt)
            continue
        if response.status_code < 300:
            return response
        try:
            data = await response.aread()
        except httpx.TimeoutException:
            raise timed_out() from None
        finally:
            await response.aclose()
        error = adapter.map_error(response.status_code, data)
        logger.info("%s answered %s", adapter.name, response.status_code)
        if response.status_code not in RETRYABLE_STATUS or last:
            raise error
        await asyncio.sleep(_backoff(response, attempt))
    raise AssertionError("unreachable")


def _backoff(response: httpx.Response, attempt: int) -> float:
    try:
        hinted = float(response.headers.get("retry-after", ""))
    except ValueError:
        hinted = 0.0
    return min(max(hinted, 0.2 * 2**attempt), 2.0)
