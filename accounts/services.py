"""Writes on accounts: users, organizations and API keys. Views and commands call these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.text import slugify

from accounts import key_cache, keys
from accounts.models import (
    ApiKey,
    Invitation,
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
    if monthly_spend_limit_nanos is not None and monthly_spend_limit_nanos <= 0:
        raise ValueError("a monthly spend limit is above zero (or none: no limit)")
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
        allowed_models=allowed_models or [],
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
    api_key.name = name
    api_key.save(update_fields=["name"])
    digest = api_key.digest
    transaction.on_commit(lambda: key_cache.changed(digest))  # the gateway caches the label
    return api_key


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
    transaction.on_commit(lambda: [key_cache.changed(digest) for digest in digests])


class MembershipError(Exception):
    """A membership change the rules forbid; the message says why."""


def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by: User, accept_url
) -> Invitation:
    """Invite an email; `accept_url(token)` builds the link that the mail carries."""
    from django.core.mail import send_mail

    email = User.objects.normalize_email(email).lower()
    if Membership.objects.filter(organization=organization, user__email=email).exists():
        raise MembershipError(f"{email} is already a member.")
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token=get_random_string(40),
        invited_by=invited_by,
    )
    link = accept_url(invitation.token)
    transaction.on_commit(
        lambda: send_mail(
            f"You are invited to {organization.name} on NeXeonAI",
            f"{invited_by.email} invited you to join {organization.name} as {role}.\n\n"
            f"Accept: {link}\n",
            None,
            [email],
        )
    )
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    if invitation.accepted_at is not None:
        raise MembershipError("This invitation was already used.")
    if user.email.lower() != invitation.email:
        raise MembershipError("This invitation was sent to another email address.")
    membership, _ = Membership.objects.get_or_create(
        organization=invitation.organization, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    return membership


def _owners(organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, by: Membership) -> Membership:
    if Role.OWNER in (role, membership.role) and by.role != Role.OWNER:
        raise MembershipError("Only owners grant or take the owner role.")
    if (
        membership.role == Role.OWNER
        and role != Role.OWNER
        and _owners(membership.organization) == 1
    ):
        raise MembershipError("An organization keeps at least one owner.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, by: Membership) -> None:
    if membership.role == Role.OWNER and by.role != Role.OWNER:
        raise MembershipError("Only owners remove owners.")
    if membership.role == Role.OWNER and _owners(membership.organization) == 1:
        raise MembershipError("An organization keeps at least one owner.")
    membership.delete()


def management_token_create(*, user: User, name: str) -> tuple[ManagementToken, str]:
    plaintext = keys.generate(keys.MANAGEMENT_PREFIX)
    token = ManagementToken.objects.create(
        user=user, name=name, prefix=keys.display_prefix(plaintext), digest=keys.digest(plaintext)
    )
    return token, plaintext


def organization_rename(*, organization: Organization, name: str) -> Organization:
    organization.name = name
    organization.save(update_fields=["name"])
    return organization


def management_token_revoke(*, token: ManagementToken) -> ManagementToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
