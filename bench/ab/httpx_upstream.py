# httpx 0.28 (httpcore 1.0 transport) behind apigateway.upstream_client.Client's interface,
# for the A/B of issue 20 (serve_httpx.py): same pooled keep-alive, same deadlines, gzip
# decoded by httpx, proxies from the environment (trust_env), per-host connection cap.
import asyncio

import httpx

from apigateway.upstream_client import UpstreamBroken, UpstreamConnectError

MAX_CONNECTIONS_PER_HOST = 1000


class HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self._chunks = None

    @property
    def headers(self):
        return self._response.headers  # case-insensitive .get, as the gateway uses it

    async def next_chunk(self):
        if self._chunks is None:
            self._chunks = self._response.aiter_bytes()
        try:
            while True:
                chunk = await self._chunks.__anext__()
                if chunk:
                    return chunk
        except StopAsyncIteration:
            return None
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.TransportError as exc:
            raise UpstreamBroken(type(exc).__name__) from None

    async def read(self):
        try:
            return await self._response.aread()
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.TransportError as exc:
            raise UpstreamBroken(type(exc).__name__) from None

    def close(self):
        if not self._response.is_closed:
            asyncio.ensure_future(self._response.aclose())


class HttpxClient:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS_PER_HOST,
                max_keepalive_connections=256,
                keepalive_expiry=30.0,
            ),
            timeout=None,
            trust_env=True,
        )

    async def request(self, method, url, *, headers, body, connect_timeout, read_timeout):
        request = self._client.build_request(
            method,
            url,
            headers=headers,
            content=body,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
        )
        try:
            response = await self._client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise UpstreamConnectError(type(exc).__name__) from None
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.TransportError as exc:
            raise UpstreamBroken(type(exc).__name__) from None
        return HttpxResponse(response)

    def close(self):
        asyncio.ensure_future(self._client.aclose())
