"""GET /v1/credits and GET /v1/key: what the calling key's organization and the key itself
have bought, spent and may still spend, as OpenRouter answers them (US dollars as JSON
numbers). Read from the ledger, which the usage drain keeps within a second or two of the
gateway; these endpoints do not count against rate limits.
"""

from __future__ import annotations

from typing import Any

from apigateway.auth import KeyInfo
from apigateway.dbsync import run_sync
from billing.money import nanos_to_usd
from billing.selectors import (
    key_month_usage_nanos,
    key_usage_nanos,
    organization_credit_totals,
)


def usd(nanos: int) -> float:
    return float(nanos_to_usd(nanos))


async def credits(key: KeyInfo) -> dict[str, Any]:
    total_credits, total_usage = await run_sync(organization_credit_totals, key.organization_id)
    return {"data": {"total_credits": usd(total_credits), "total_usage": usd(total_usage)}}


def _key_usage(key_id: int) -> tuple[int, int]:
    return key_usage_nanos(key_id), key_month_usage_nanos(key_id)


async def key_status(key: KeyInfo) -> dict[str, Any]:
    usage, month_usage = await run_sync(_key_usage, key.key_id)
    limit = key.monthly_spend_limit_nanos
    return {
        "data": {
            "label": key.name,
            "usage": usd(usage),
            "usage_this_month": usd(month_usage),
            "limit": None if limit is None else usd(limit),
            "limit_remaining": None if limit is None else usd(max(limit - month_usage, 0)),
            "limit_reset": None if limit is None else "monthly",
            "rate_limit": {
                "requests": key.rpm_limit,
                "tokens": key.tpm_limit,
                "interval": "1m",
            },
        }
    }
