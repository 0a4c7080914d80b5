"""One usage event per charged call, made durable before the response completes.

With Redis: appended to the usage queue (billing.usage_queue), booked in batches by Celery.
Embedded mode: booked straight into the ledger, in a thread.
"""

from __future__ import annotations

from typing import Any

import orjson

from apigateway import redis as gateway_redis
from apigateway.dbsync import run_sync
from billing import usage_queue


async def emit(event: dict[str, Any]) -> None:
    client = gateway_redis.client()
    if client is None:
        await run_sync(usage_queue.book, [event])
    else:
        await client.rpush(usage_queue.QUEUE, orjson.dumps(event))
