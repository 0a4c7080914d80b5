"""Who is calling: `Authorization: Bearer nex-sk-…` → the key's facts, without the ORM on the
event loop. Lookup order: this process (GATEWAY_KEY_CACHE_SECONDS) → Redis (60 s, deleted
on revoke) → the database in a thread. A revoked key is refused everywhere within the
in-process TTL.
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from dataclasses import asdict, dataclass

import orjson
from django.conf import settings

from accounts import keys
from accounts.models import ApiKey
from accounts.plans import effective_limits
from apigateway import redis as gateway_redis
from apigateway.dbsync import run_sync
from apigateway.errors import INVALID_REQUEST, GatewayError
from apigateway.resp import RedisReplyError, RedisUnavailable

logger = logging.getLogger(__name__)
REDIS_TTL_SECONDS = 60
_local: dict[str, tuple[KeyInfo | None, float]] = {}
_LOCAL_MAX = 50_000
# Authorization header -> key digest: a pure function, so never stale, only bounded. Saves
# the parse, the shape check and the SHA-256 on a key's every call but its first. It holds
# recent callers' keys in this process's memory, as its calls in flight (and the operator's
# provider keys) already are; nothing of it is logged or leaves the process.
_digests: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: int
    organization_id: int
    name: str
    rpm_limit: int | None  # effective: the key's own, else its organization's plan default
    tpm_limit: int | None
    allowed_models: tuple[str, ...]
    expires_at: float | None  # unix time
    monthly_spend_limit_nanos: int | None
    org_rpm_limit: int | None = None
    org_tpm_limit: int | None = None


def redis_key(digest: str) -> str:
    return f"nexeon:apikey:{digest}"


def read_key(digest: str) -> KeyInfo | None:
    """Sync: the database row behind a digest, if the key is usable."""
    row = (
        ApiKey.objects.filter(digest=digest, revoked_at__isnull=True)
        .values(
            "id",
            "organization_id",
            "name",
            "rpm_limit",
            "tpm_limit",
            "allowed_models",
            "expires_at",
            "monthly_spend_limit_nanos",
            "organization__plan",
            "organization__rpm_limit",
            "organization__tpm_limit",
        )
        .first()
    )
    if row is None:
        return None
    limits = effective_limits(
        plan_name=row["organization__plan"],
        key_rpm=row["rpm_limit"],
        key_tpm=row["tpm_limit"],
        org_rpm=row["organization__rpm_limit"],
        org_tpm=row["organization__tpm_limit"],
    )
    return KeyInfo(
        key_id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        rpm_limit=limits.key_rpm,
        tpm_limit=limits.key_tpm,
        org_rpm_limit=limits.org_rpm,
        org_tpm_limit=limits.org_tpm,
        allowed_models=tuple(row["allowed_models"] or ()),
        expires_at=row["expires_at"].timestamp() if row["expires_at"] else None,
        monthly_spend_limit_nanos=row["monthly_spend_limit_nanos"],
    )


def unauthorized(message: str, code: str | None = "invalid_api_key") -> GatewayError:
    return GatewayError(401, message, type=INVALID_REQUEST, code=code)


async def authenticate(header: str | None) -> KeyInfo:
    digest = _digests.get(header) if header else None
    if digest is None:
        digest = header_digest(header)
    cached = _local.get(digest)
    if cached is not None and cached[1] > time.monotonic():
        info = cached[0]
    else:
        info = await lookup(digest)
    if info is None:
        raise unauthorized("Incorrect API key provided, or the key has been revoked.")
    if info.expires_at is not None and info.expires_at <= time.time():
        raise unauthorized("This API key has expired.")
    return info


def header_digest(header: str | None) -> str:
    """The digest of the key an Authorization header carries; 401 for no key or a
    malformed one."""
    if not header:
        raise unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer nex-sk-...'.",
            code=None,
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not keys.looks_like_key(token):
        raise unauthorized("Incorrect API key provided. Keys look like nex-sk-...")
    if len(_digests) >= _LOCAL_MAX:
        _digests.clear()
    digest = _digests[header] = keys.digest(token)
    return digest


async def lookup(digest: str) -> KeyInfo | None:
    now = time.monotonic()
    cached = _local.get(digest)
    if cached is not None and cached[1] > now:
        return cached[0]
    info = await _shared_lookup(digest)
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[digest] = (info, now + settings.GATEWAY_KEY_CACHE_SECONDS)
    return info


async def _shared_lookup(digest: str) -> KeyInfo | None:
    """Redis's copy, else the database. Redis unreachable is not the caller's fault: the
    database answers (whether the call may then proceed is the credit check's decision).
    Through the hot path's own Redis client: a key's copy is read again every
    GATEWAY_KEY_CACHE_SECONDS by every worker that serves it."""
    fast = gateway_redis.fast() if settings.REDIS_URL else None
    if fast is not None:
        try:
            raw = await fast.call("GET", redis_key(digest))
        except (RedisUnavailable, RedisReplyError):
            logger.warning("key lookup: Redis unreachable, reading the database")
            fast = raw = None
        if raw is not None:
            data = orjson.loads(raw)
            return None if data is None else _from_json(data)
    info = await run_sync(read_key, digest)
    if fast is not None:
        payload = orjson.dumps(asdict(info) if info else None)
        with suppress(RedisUnavailable, RedisReplyError):  # (the next lookup reads the DB)
            await fast.call("SET", redis_key(digest), payload, "EX", REDIS_TTL_SECONDS)
    return info


def _from_json(data: dict) -> KeyInfo:
    data["allowed_models"] = tuple(data["allowed_models"])
    return KeyInfo(**data)


def forget_key(digest: str) -> None:
    """Sync, called after a key changes (revoke, limits): drop the shared cached copy."""
    _local.pop(digest, None)
    if settings.REDIS_URL:
        import redis

        with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5) as client:
            client.delete(redis_key(digest))
