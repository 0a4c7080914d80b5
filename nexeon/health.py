"""Probes for load balancers: /healthz (the process answers), /readyz (its stores answer).

/readyz is an async view: Django runs it on the serving event loop, where it asks the
hot path's own Redis client (credit.checks.hot_path_writes) to write to the money
database, so that what it reports is what a call would meet.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from credit import connections
from credit.checks import hot_path_writes

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.warning("readyz: the database is unreachable", exc_info=True)
        return False


async def _redis_ok() -> bool | None:
    if not connections.configured():
        return None  # embedded mode: nothing to reach
    return await hot_path_writes()


@never_cache
@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": await sync_to_async(_database_ok)(), "redis": await _redis_ok()}
    ready = all(ok is not False for ok in checks.values())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {
            name: ("ok" if ok else "not configured" if ok is None else "unreachable")
            for name, ok in checks.items()
        },
    }
    return JsonResponse(body, status=200 if ready else 503)
