"""Writes on accounts: users, organizations and their limits, memberships, API keys and
management tokens. Views, the REST API, the admin and commands call these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.text import slugify

from accounts import key_cache, keys
from accounts.models import (
    ApiKey,
    ManagementToken,
    Membership,
    Organization,
    Role,
    User,
)
from billing import services as billing_services


@transaction.atomic
def organization_create(*, name: str, owner: User, is_personal: bool = False) -> Organization:
    base = slugify(name)[:120] or "org"
    slug = base
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{get_random_string(6).lower()}"
    organization = Organization.objects.create(name=name, slug=slug, is_personal=is_personal)
    Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
    return organization


@transaction.atomic
def personal_organization_get_or_create(*, user: User) -> Organization:
    """The user's own organization; a new one (a new customer's) gets SIGNUP_CREDIT_USD.
    Organizations created later from the dashboard get none, or creating them would mint
    credit."""
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__is_personal=True, role=Role.OWNER)
        .first()
    )
    if membership:
        return membership.organization
    name = f"{user.email.split('@')[0]}'s organization"
    organization = organization_create(name=name, owner=user, is_personal=True)
    billing_services.signup_credit_grant(organization=organization)
    return organization


@transaction.atomic
def user_get_or_create(*, email: str) -> tuple[User, bool]:
    """A user with an unusable password (they set one through password reset)."""
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email=email).first()
    if user:
        return user, False
    return User.objects.create_user(email=email, password=None), True


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    plaintext: str  # shown to the customer exactly once, never stored


def api_key_create(
    *,
    organization: Organization,
    name: str,
    created_by: User | None = None,
    expires_at: datetime | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    monthly_spend_limit_nanos: int | None = None,
    allowed_models: list[str] | None = None,
) -> CreatedKey:
    _check_spend_limit(monthly_spend_limit_nanos)
    models = _checked_models(allowed_models or [], already=())
    plaintext = keys.generate()
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=keys.display_prefix(plaintext),
        digest=keys.digest(plaintext),
        created_by=created_by,
        expires_at=expires_at,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        monthly_spend_limit_nanos=monthly_spend_limit_nanos,
        allowed_models=models,
    )
    return CreatedKey(api_key=api_key, plaintext=plaintext)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke for good; every gateway worker refuses it within GATEWAY_KEY_CACHE_SECONDS."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        digest = api_key.digest
        transaction.on_commit(lambda: key_cache.revoked(digest))
    return api_key


def api_key_rename(*, api_key: ApiKey, name: str) -> ApiKey:
    return api_key_update(api_key=api_key, name=name)


# What can change on a key after creation: everything it was created with but its secret.
EDITABLE_KEY_FIELDS = frozenset(
    {"name", "expires_at", "rpm_limit", "tpm_limit", "monthly_spend_limit_nanos", "allowed_models"}
)


class InvalidKeySetting(ValueError):
    """A key setting the rules refuse; `field` names it (for a form's or the API's error)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@transaction.atomic
def api_key_update(*, api_key: ApiKey, **changes) -> ApiKey:
    """Change a key's name, expiry, limits or allowed models (`changes`: only those given).
    Every gateway worker applies it within GATEWAY_KEY_CACHE_SECONDS: the shared copy is
    replaced by the "changed" marker after the commit (key_cache.py), as for a revocation."""
    unknown = set(changes) - EDITABLE_KEY_FIELDS
    if unknown:
        raise TypeError(f"not editable on a key: {', '.join(sorted(unknown))}")
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        raise InvalidKeySetting("__all__", "A revoked key cannot be changed.")
    if "monthly_spend_limit_nanos" in changes:
        _check_spend_limit(changes["monthly_spend_limit_nanos"])
    if "allowed_models" in changes:
        changes["allowed_models"] = _checked_models(
            changes["allowed_models"] or [], already=api_key.allowed_models
        )
    for field, value in changes.items():
        setattr(api_key, field, value)
    api_key.save(update_fields=sorted(changes))
    digest = api_key.digest
    transaction.on_commit(lambda: key_cache.changed(digest))
    return api_key


def _check_spend_limit(nanos: int | None) -> None:
    if nanos is not None and nanos <= 0:
        raise InvalidKeySetting(
            "monthly_spend_limit_nanos", "a monthly spend limit is above zero (or none: no limit)"
        )


def _checked_models(models: list[str], *, already) -> list[str]:
    """The allowed models, each once and each a catalog id. An id the key already had may
    stay after the catalog drops it: refusing it would make the edit drop it, and a list
    emptied that way would allow every model, widening the key."""
    from accounts.selectors import catalog_model_ids

    wanted = list(dict.fromkeys(models))
    known = set(catalog_model_ids()) | set(already)
    unknown = [model for model in wanted if model not in known]
    if unknown:
        raise InvalidKeySetting(
            "allowed_models", f"Not a model of the catalog: {', '.join(unknown)}."
        )
    return wanted


def organization_limits_update(
    *,
    organization: Organization,
    plan: str,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
) -> Organization:
    """The operator's choice of plan and overrides; every gateway worker applies it within
    GATEWAY_KEY_CACHE_SECONDS (the keys' cached facts carry the organization's limits)."""
    organization.plan = plan
    organization.rpm_limit = rpm_limit
    organization.tpm_limit = tpm_limit
    organization.save(update_fields=["plan", "rpm_limit", "tpm_limit"])
    organization_keys_forget(organization=organization)
    return organization


def organization_keys_forget(*, organization: Organization) -> None:
    digests = list(organization.api_keys.values_list("digest", flat=True))
    transaction.on_commit(lambda: [key_cache.changed(digest) for digest in digests])  # type: ignore[func-returns-value]


class MembershipError(Exception):
    """A membership change the rules forbid; the message says why."""


def _locked_memberships(organization_id: int) -> dict[int, Membership]:
    """Lock every membership row of the organization until the transaction ends, and read
    them: two changes of roles in one organization then happen one after the other, so the
    last-owner rule is checked on what the other change committed (two owners demoting each
    other at once would otherwise both see two owners and leave none)."""
    rows = Membership.objects.select_for_update().filter(organization_id=organization_id)
    return {row.pk: row for row in rows.order_by("pk")}


def _locked_pair(membership: Membership, by: Membership) -> tuple[Membership, Membership]:
    """The target's and the actor's memberships as they are now, locked."""
    current = _locked_memberships(membership.organization_id)
    if by.pk not in current:
        raise MembershipError("You are no longer a member of this organization.")
    if membership.pk not in current:
        raise MembershipError("That person is no longer a member.")
    return current[membership.pk], current[by.pk]


def _owner_count(organization_id: int) -> int:
    return Membership.objects.filter(organization_id=organization_id, role=Role.OWNER).count()


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, by: Membership) -> Membership:
    membership, by = _locked_pair(membership, by)
    if by.role not in (Role.OWNER, Role.ADMIN):
        raise MembershipError("Only owners and admins change roles.")
    if Role.OWNER in (role, membership.role) and by.role != Role.OWNER:
        raise MembershipError("Only owners grant or take the owner role.")
    if (
        membership.role == Role.OWNER
        and role != Role.OWNER
        and _owner_count(membership.organization_id) == 1
    ):
        raise MembershipError("An organization keeps at least one owner.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, by: Membership) -> None:
    membership, by = _locked_pair(membership, by)
    if by.role not in (Role.OWNER, Role.ADMIN) and membership.pk != by.pk:
        raise MembershipError("Only owners and admins remove members.")
    if membership.role == Role.OWNER and by.role != Role.OWNER:
        raise MembershipError("Only owners remove owners.")
    if membership.role == Role.OWNER and _owner_count(membership.organization_id) == 1:
        raise MembershipError("An organization keeps at least one owner.")
    membership.delete()


MANAGEMENT_TOKEN_MAX_DAYS = 365
MANAGEMENT_TOKEN_DEFAULT_DAYS = 90


def management_token_create(
    *,
    user: User,
    organization: Organization,
    name: str,
    days: int = MANAGEMENT_TOKEN_DEFAULT_DAYS,
) -> tuple[ManagementToken, str]:
    """A token acting as `user` in `organization` alone, for `days` (a year at most: a
    leaked token that never expires is a standing door)."""
    if not 1 <= days <= MANAGEMENT_TOKEN_MAX_DAYS:
        raise ValueError(f"a management token lives 1 to {MANAGEMENT_TOKEN_MAX_DAYS} days")
    if not Membership.objects.filter(user=user, organization=organization).exists():
        raise ValueError("a management token acts in an organization its user is a member of")
    plaintext = keys.generate(keys.MANAGEMENT_PREFIX)
    token = ManagementToken.objects.create(
        user=user,
        organization=organization,
        name=name,
        prefix=keys.display_prefix(plaintext),
        digest=keys.digest(plaintext),
        expires_at=timezone.now() + timedelta(days=days),
    )
    return token, plaintext


def management_tokens_revoke_for_user(*, user: User) -> int:
    """A password change or reset ends every token of the user: whoever took the account
    over, or the password, keeps no way in through the REST API."""
    return ManagementToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def organization_rename(*, organization: Organization, name: str) -> Organization:
    organization.name = name
    organization.save(update_fields=["name"])
    return organization


def management_token_revoke(*, token: ManagementToken) -> ManagementToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
