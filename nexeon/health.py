"""Probes for load balancers: /healthz (the process answers), /readyz (its stores answer)."""

from __future__ import annotations

import logging

import redis
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from credit import connections

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


def _redis_ok() -> bool | None:
    if not connections.configured():
        return None  # embedded mode: nothing to reach
    try:
        return bool(connections.probe().ping())
    except redis.RedisError:
        logger.warning("readyz: Redis is unreachable", exc_info=True)
        return False


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_ok(), "redis": _redis_ok()}
    ready = all(ok is not False for ok in checks.values())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {
            name: ("ok" if ok else "not configured" if ok is None else "unreachable")
            for name, ok in checks.items()
        },
    }
    return JsonResponse(body, status=200 if ready else 503)
