"""The live feed: each written usage record is published to its organization's Redis
pub/sub channel, which each process's subscriber (usage/live_hub.py) hands to the
dashboard's WebSockets (usage/consumers.py). Without REDIS_URL (the embedded default, one
process) the records go to this process's sockets directly.

Best effort by design: pub/sub keeps nothing, so a browser that is not connected misses
the message (the table and charts read the database), and a Redis error is logged, never
raised, so the usage pipeline that calls publish() is never held back by the feed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import redis

from accounts.models import ApiKey
from billing.history import usd_exact
from credit import connections
from credit import keys as credit_keys
from usage import live_hub
from usage.models import UsageRecord

logger = logging.getLogger(__name__)


def channel_name(organization_id: int) -> str:
    return credit_keys.live_usage(organization_id)


def _keys(records: Sequence[UsageRecord]) -> dict[int, tuple[str, str]]:
    """Key id -> (name, prefix), in one query for the keys not already loaded."""
    field = UsageRecord._meta.get_field("api_key")
    known: dict[int, tuple[str, str]] = {}
    missing: set[int] = set()
    for record in records:
        if record.api_key_id is None:
            continue
        if field.is_cached(record) and record.api_key is not None:
            known[record.api_key_id] = (record.api_key.name, record.api_key.prefix)
        else:
            missing.add(record.api_key_id)
    missing -= known.keys()
    if missing:
        for pk, name, prefix in ApiKey.objects.filter(pk__in=missing).values_list(
            "pk", "name", "prefix"
        ):
            known[pk] = (name, prefix)
    return known


def message(record: UsageRecord, key: tuple[str, str] | None) -> dict[str, Any]:
    """What a browser is sent about one call: never any prompt or answer contents."""
    name, prefix = key or ("", "")
    return {
        "request_id": record.request_id,
        "created_at": record.created_at.astimezone(UTC).isoformat(),
        "key_name": name,
        "key_prefix": prefix,
        "model": record.model,
        "endpoint": record.endpoint,
        "status": record.status,
        "cost_usd": usd_exact(record.cost_nanos),
        "duration_ms": round(record.duration_ms, 1),
    }


def publish(records: Sequence[UsageRecord]) -> None:
    """Publish one small JSON message per record to `nexeon:live:<organization id>`.

    Sync (call it from the pipeline after the batch is committed); without REDIS_URL the
    messages go to this process's sockets; never raises for Redis errors.
    """
    if not records:
        return
    if not connections.configured():
        keys = _keys(records)
        for record in records:
            payload = message(record, keys.get(record.api_key_id or 0))
            live_hub.deliver_here(record.organization_id, json.dumps(payload))
        return
    try:
        client = connections.publisher()
        keys = _keys(records)
        pipe = client.pipeline(transaction=False)
        for record in records:
            payload = message(record, keys.get(record.api_key_id or 0))
            pipe.publish(channel_name(record.organization_id), json.dumps(payload))
        pipe.execute()
    except redis.RedisError:
        logger.warning("live feed: publishing %d usage records failed", len(records), exc_info=True)


def watched(organization_ids: set[int]) -> set[int]:
    """The organizations someone is watching right now (one PUBSUB NUMSUB): nobody is
    the usual case, and the pipeline then builds and sends nothing."""
    if not organization_ids:
        return set()
    if not connections.configured():
        return live_hub.watched_here(organization_ids)
    ordered = sorted(organization_ids)
    try:
        counts = connections.publisher().pubsub_numsub(*(channel_name(org) for org in ordered))
    except redis.RedisError:
        logger.warning("live feed: cannot tell who is watching", exc_info=True)
        return set()
    return {org for org, (_, count) in zip(ordered, counts, strict=True) if count}
