"""Rate-limit plans: the default requests/tokens per minute of an organization and of each
of its keys.

An organization is on one plan (Organization.plan); the operator may override its limits
(Organization.rpm_limit / tpm_limit, in the admin) and its members may set any key's own
limits (ApiKey.rpm_limit / tpm_limit). Whatever is not overridden comes from the plan. None
means no limit. Plans are configuration (RATE_LIMIT_PLANS), not data: changing one takes
a restart, as changing any other price or limit of the service does.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

DEFAULT_PLANS: dict[str, dict[str, int | None]] = {
    # The default (DEFAULT_PLAN): 500 requests per minute per key, as OpenAI's first usage
    # tier allows per model.
    "standard": {"key_rpm": 500, "key_tpm": None, "org_rpm": 5_000, "org_tpm": None},
    "scale": {"key_rpm": 10_000, "key_tpm": None, "org_rpm": 50_000, "org_tpm": 50_000_000},
    # Internal use and load tests: only limits set on the key itself apply.
    "unlimited": {"key_rpm": None, "key_tpm": None, "org_rpm": None, "org_tpm": None},
}
LIMIT_FIELDS = ("key_rpm", "key_tpm", "org_rpm", "org_tpm")


@dataclass(frozen=True, slots=True)
class Limits:
    """What one key may do per minute (None = unlimited)."""

    key_rpm: int | None = None
    key_tpm: int | None = None
    org_rpm: int | None = None
    org_tpm: int | None = None


def plan(name: str) -> dict[str, int | None]:
    plans = settings.RATE_LIMIT_PLANS
    return plans.get(name) or plans[settings.DEFAULT_PLAN]


def plan_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in settings.RATE_LIMIT_PLANS]


def effective_limits(
    *,
    plan_name: str,
    key_rpm: int | None = None,
    key_tpm: int | None = None,
    org_rpm: int | None = None,
    org_tpm: int | None = None,
) -> Limits:
    """Overrides (the key's own, the organization's) first, then the plan's defaults."""
    defaults = plan(plan_name)
    return Limits(
        key_rpm=key_rpm or defaults.get("key_rpm"),
        key_tpm=key_tpm or defaults.get("key_tpm"),
        org_rpm=org_rpm or defaults.get("org_rpm"),
        org_tpm=org_tpm or defaults.get("org_tpm"),
    )


def validated_plans(raw: object) -> dict[str, dict[str, int | None]]:
    """RATE_LIMIT_PLANS from the environment, checked (settings refuse to start on error)."""
    if not isinstance(raw, dict) or not raw:
        raise ValueError("must be a JSON object of plans")
    plans: dict[str, dict[str, int | None]] = {}
    for name, limits in raw.items():
        if not isinstance(limits, dict) or set(limits) - set(LIMIT_FIELDS):
            raise ValueError(f"plan {name!r} may only set {', '.join(LIMIT_FIELDS)}")
        for field in LIMIT_FIELDS:
            value = limits.get(field)
            if value is not None and (type(value) is not int or value <= 0):
                raise ValueError(f"plan {name!r}: {field} must be a positive integer or null")
        plans[str(name)] = {field: limits.get(field) for field in LIMIT_FIELDS}
    return plans


def default_plan() -> str:
    return settings.DEFAULT_PLAN


def organization_limits(organization) -> Limits:
    """An organization's limits and its keys' defaults, as the gateway applies them."""
    return effective_limits(
        plan_name=organization.plan,
        org_rpm=organization.rpm_limit,
        org_tpm=organization.tpm_limit,
    )
