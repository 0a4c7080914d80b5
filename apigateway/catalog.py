"""The model catalog held in memory for the hot path.

Rows live in the database (editable in the admin); the default rows come from
catalog.json. Each process keeps a snapshot. Every GATEWAY_CATALOG_REFRESH_SECONDS it asks
Redis, in the background, for the catalog's change counter (bumped whenever a row is saved
or deleted) and reads the rows again only when the counter moved, or when its copy is
older than GATEWAY_CATALOG_MAX_AGE_SECONDS (edits made around Django's save and delete, e.g.
in SQL). So an edit reaches every worker within seconds, no request waits on the database,
and an idle catalog costs each worker one Redis GET per interval instead of a database
connection and query. Embedded (no Redis), the rows are simply read every interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from apigateway.dbsync import run_sync
from apigateway.models import CatalogModel, deployments_problem, fallbacks_problem
from billing.pricing import with_markup
from credit import connections, keys
from credit.resp import RedisReplyError, RedisUnavailable

logger = logging.getLogger(__name__)
DEFAULTS_FILE = Path(__file__).with_name("catalog.json")
NEVER = float("-inf")
UNKNOWN = object()  # no change counter to compare (embedded, or Redis unreachable): read rows
_FIELDS = (
    "provider",
    "upstream_model",
    "owned_by",
    "created",
    "mode",
    "context_window",
    "max_output_tokens",
    "unsized_input_tokens",
    "prices",
    "fallbacks",
    "reasoning",
    "structured_output",
    "deployments",
)


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    id: str
    provider: str
    upstream_model: str
    owned_by: str
    created: int
    mode: str
    context_window: int | None
    max_output_tokens: int | None
    prices: dict[str, Any]  # what customers pay: the catalog's prices plus the markup
    # After the balanced ones, in order: more deployments of the same model.
    fallbacks: tuple[tuple[str, str], ...] = ()
    unsized_input_tokens: int | None = None  # reserved per unsizable input part (sizing.py)
    reasoning: bool = False  # the model can think (reasoning_effort / reasoning)
    structured_output: bool = False  # native JSON schema output (Anthropic's output_config)
    # (provider, upstream_model, weight): balanced with (provider, upstream_model) above.
    deployments: tuple[tuple[str, str, float], ...] = ()


def default_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(DEFAULTS_FILE.read_text())["models"]
    return rows


@transaction.atomic
def catalog_load_defaults(
    *, force: bool = False, model: type[CatalogModel] = CatalogModel
) -> tuple[int, int]:
    """Insert the default models that are missing; with force, also reset existing ones.

    `model` lets a data migration pass its historical model. Returns (created, updated).
    """
    created = updated = 0
    # A data migration's historical model predates the fields added by later migrations.
    columns = {field.name for field in model._meta.get_fields()}
    for row in default_rows():
        values = {name: row.get(name) for name in _FIELDS if name in columns}
        for listed in ("fallbacks", "deployments"):
            if listed in values:
                values[listed] = row.get(listed, [])
        for flag in ("reasoning", "structured_output"):
            if flag in values:
                values[flag] = bool(row.get(flag))
        if force:
            _, was_created = model.objects.update_or_create(public_id=row["id"], defaults=values)
        else:
            _, was_created = model.objects.get_or_create(public_id=row["id"], defaults=values)
        created += was_created
        updated += force and not was_created
    return created, updated


def read_entries() -> dict[str, CatalogEntry]:
    """One query: every enabled model (sync; call through the snapshot, not the loop), and
    the demo model when it is on (it is shipped with the code, not a row)."""
    entries = {
        row.public_id: CatalogEntry(
            id=row.public_id,
            provider=row.provider,
            upstream_model=row.upstream_model,
            owned_by=row.owned_by,
            created=row.created,
            mode=row.mode,
            context_window=row.context_window,
            max_output_tokens=row.max_output_tokens,
            prices=with_markup(row.prices or {}, settings.PRICE_MARKUP_PERCENT),
            fallbacks=fallbacks_of(row),
            unsized_input_tokens=row.unsized_input_tokens,
            reasoning=row.reasoning,
            structured_output=row.structured_output,
            deployments=deployments_of(row),
        )
        for row in CatalogModel.objects.filter(enabled=True)
    }
    if settings.GATEWAY_DEMO_MODEL:
        from apigateway import demo  # (it imports this module)

        entries.setdefault(demo.MODEL_ID, demo.ENTRY)
    return entries


def fallbacks_of(row: CatalogModel) -> tuple[tuple[str, str], ...]:
    """The row's fallback deployments; a malformed value (edited around the admin's checks)
    is logged and ignored rather than failing the whole catalog."""
    value = row.fallbacks or []
    problem = fallbacks_problem(value)
    if problem:
        logger.error("catalog model %s: fallbacks ignored: %s", row.public_id, problem)
        return ()
    return tuple(
        (item["provider"].strip(), item.get("upstream_model") or row.upstream_model)
        for item in value
    )


def deployments_of(row: CatalogModel) -> tuple[tuple[str, str, float], ...]:
    """The row's balanced deployments, as fallbacks_of reads its fallbacks."""
    value = row.deployments or []
    problem = deployments_problem(value)
    if problem:
        logger.error("catalog model %s: deployments ignored: %s", row.public_id, problem)
        return ()
    return tuple(
        (
            item["provider"].strip(),
            item.get("upstream_model") or row.upstream_model,
            float(item.get("weight", 1)),
        )
        for item in value
    )


def announce_change() -> None:
    """Sync, after a catalog row was saved or deleted: bump the change counter, so that
    every worker reads the catalog again at its next check."""
    if not connections.configured():
        return
    try:
        connections.sync().incr(keys.CATALOG_VERSION)
    except redis.RedisError as exc:
        logger.warning(
            "catalog changed, but Redis is unreachable (%s): workers reload it within %ss",
            exc,
            settings.GATEWAY_CATALOG_MAX_AGE_SECONDS,
        )


async def current_version() -> object:
    """The change counter (None before the first change), or UNKNOWN."""
    if not connections.configured():
        return UNKNOWN
    try:
        return await connections.fast().call("GET", keys.CATALOG_VERSION)
    except (RedisUnavailable, RedisReplyError):
        return UNKNOWN


class CatalogSnapshot:
    def __init__(self) -> None:
        self.entries: dict[str, CatalogEntry] = {}
        self.loaded_at = NEVER  # when the rows were read
        self.checked_at = NEVER  # when the change counter was last compared
        self.version: object = UNKNOWN
        self._refreshing: asyncio.Task[Any] | None = None

    async def get(self) -> dict[str, CatalogEntry]:
        if self.loaded_at == NEVER:
            await self.refresh()  # first request of this process: nothing to serve yet
        elif (
            time.monotonic() - self.checked_at > settings.GATEWAY_CATALOG_REFRESH_SECONDS
            and not self._refreshing
        ):
            self._refreshing = asyncio.create_task(self.check())
            self._refreshing.add_done_callback(self._checked)
        return self.entries

    async def check(self) -> None:
        """Read the rows again if the catalog changed since they were read (or may have)."""
        self.checked_at = time.monotonic()
        version = await current_version()
        stale = time.monotonic() - self.loaded_at > settings.GATEWAY_CATALOG_MAX_AGE_SECONDS
        if version is UNKNOWN or version != self.version or stale:
            await self._read(version)

    async def refresh(self) -> None:
        await self._read(await current_version())

    async def _read(self, version: object) -> None:
        """The rows, as of `version` of the counter. It is read before them: a change
        committed in between is read now and again at the next check, never missed."""
        self.entries = await run_sync(read_entries)
        self.version = version
        self.loaded_at = self.checked_at = time.monotonic()

    def _checked(self, task: asyncio.Task[Any]) -> None:
        self._refreshing = None
        if not task.cancelled() and (error := task.exception()):
            logger.error("catalog refresh failed; serving the previous snapshot", exc_info=error)
            self.checked_at = time.monotonic()  # retry after the usual interval


snapshot = CatalogSnapshot()
