"""The credit store's move to sharded key names (credit/legacy.py), given what only the
database knows: which organization each API key belongs to (its spend counters and rate
windows were named by key alone). Run by `manage.py migrate_credit_keys` and after
`manage.py migrate` (post_migrate), so an upgrade needs no extra step."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis
from django.conf import settings

from accounts.models import ApiKey
from credit import connections, legacy

logger = logging.getLogger(__name__)


def key_organizations(key_ids: Iterable[int]) -> dict[int, int]:
    return dict(ApiKey.objects.filter(pk__in=list(key_ids)).values_list("pk", "organization_id"))


def migrate_credit_keys() -> legacy.Moved:
    """Raises RuntimeError when REDIS_URL is unset or unreachable."""
    if not connections.configured():
        raise RuntimeError("REDIS_URL is not set: the money state is in process memory")
    try:
        if connections.is_cluster(settings.REDIS_URL):
            return legacy.Moved()  # a cluster never held the old names
        return legacy.migrate(connections.sync(), key_organizations)
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis at REDIS_URL cannot be reached: {exc}") from None


def after_migrate(sender, **kwargs) -> None:
    """post_migrate (once, for this app): best effort, never failing the migration."""
    if not connections.configured():
        return
    try:
        migrate_credit_keys()
    except RuntimeError as exc:
        logger.warning("credit keys not checked for the pre-shard layout: %s", exc)
