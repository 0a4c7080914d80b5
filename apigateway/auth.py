"""Who is calling: `Authorization: Bearer nex-sk-…` (or Anthropic's `x-api-key: nex-sk-…`) →
the key's facts, without the ORM on the event loop. Lookup order: this process
(GATEWAY_KEY_CACHE_SECONDS) → Redis (60 s; replaced by a tombstone on revoke or delete,
accounts/key_cache.py) → the database in a thread. A revoked or deleted key is refused
everywhere within the in-process TTL.
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from django.conf import settings

from accounts import key_cache
from accounts import keys as api_keys
from accounts.models import ApiKey
from accounts.plans import effective_limits
from apigateway import auth_failures as failures
from apigateway.asgi_io import Scope, client_address, header
from apigateway.dbsync import run_sync
from apigateway.errors import INVALID_REQUEST, GatewayError
from credit import connections, keys
from credit.resp import RedisReplyError, RedisUnavailable

logger = logging.getLogger(__name__)
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


def credentials(scope: Scope) -> str | None:
    """The key as an Authorization header: `Authorization: Bearer …`, else Anthropic's
    `x-api-key: …` (what the anthropic SDKs and Claude Code send)."""
    authorization = header(scope, b"authorization")
    if authorization:
        return authorization
    api_key = header(scope, b"x-api-key")
    return f"Bearer {api_key.strip()}" if api_key and api_key.strip() else None


def unauthorized(message: str, code: str | None = "invalid_api_key") -> GatewayError:
    return GatewayError(401, message, type=INVALID_REQUEST, code=code)


async def authenticate(header: str | None, scope: Scope | None = None) -> KeyInfo:
    """The key's facts; 401 for no key, a malformed, unknown, expired or revoked one; 429
    for an address whose unknown keys keep failing (auth_failures.py)."""
    digest = _digests.get(header) if header else None
    if digest is None:
        digest = header_digest(header)
    cached = _local.get(digest)
    if cached is not None and cached[1] > time.monotonic():
        info = cached[0]
    else:
        info = await lookup(digest, scope)
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
            "You didn't provide an API key. Send it as 'Authorization: Bearer nex-sk-...' "
            "or 'x-api-key: nex-sk-...'.",
            code=None,
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not api_keys.looks_like_key(token):
        raise unauthorized("Incorrect API key provided. Keys look like nex-sk-...")
    if len(_digests) >= _LOCAL_MAX:
        _digests.clear()
    digest = _digests[header] = api_keys.digest(token)
    return digest


async def lookup(digest: str, scope: Scope | None = None) -> KeyInfo | None:
    now = time.monotonic()
    cached = _local.get(digest)
    if cached is not None and cached[1] > now:
        return cached[0]
    info = await _shared_lookup(digest, scope)
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[digest] = (info, now + settings.GATEWAY_KEY_CACHE_SECONDS)
    return info


async def _shared_lookup(digest: str, scope: Scope | None) -> KeyInfo | None:
    """Redis's copy, else the database. Redis unreachable is not the caller's fault: the
    database answers (whether the call may then proceed is the credit check's decision).
    Through the hot path's own Redis client: a key's copy is read again every
    GATEWAY_KEY_CACHE_SECONDS by every worker that serves it. Only a usable key's facts
    are written, and only where Redis has nothing (accounts/key_cache.py): an unknown key
    costs no Redis entry, and a revocation's tombstone is never overwritten."""
    fast = connections.fast() if connections.configured() else None
    raw = None
    if fast is not None:
        try:
            raw = await fast.call("GET", keys.api_key(digest))
        except (RedisUnavailable, RedisReplyError):
            logger.warning("key lookup: Redis unreachable, reading the database")
            fast = None
        if raw is not None and raw != key_cache.CHANGED:
            data = orjson.loads(raw)
            return None if data is None else _from_json(data)
    # Whom to blame, found only here (the caller's key is unknown to the caches): an unknown
    # key costs a database query, so an address's failures are limited.
    address = client_address(scope, settings.FORWARDED_ALLOW_IPS) if scope else ""
    if raw is None:
        await failures.check(address)
    info = await run_sync(read_key, digest)
    if info is None:
        await failures.count(address)
    elif fast is not None and raw is None:
        with suppress(RedisUnavailable, RedisReplyError):  # (the next lookup reads the DB)
            await fast.call(
                "SET",
                keys.api_key(digest),
                orjson.dumps(asdict(info)),
                "NX",
                "EX",
                key_cache.COPY_SECONDS,
            )
    return info


def _from_json(data: dict[str, Any]) -> KeyInfo:
    data["allowed_models"] = tuple(data["allowed_models"])
    return KeyInfo(**data)
