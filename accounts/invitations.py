"""Invitations into an organization: send, withdraw, accept; the pending one a visitor
carries through sign-up and email verification (in their session).

An invitation works for its email address only, until it is used, withdrawn or expires
(INVITATION_EXPIRY_DAYS); an organization sends at most INVITATIONS_PER_HOUR.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import get_random_string

from accounts.models import Invitation, Membership, Organization, Role, User
from accounts.services import MembershipError

# The subject is ours alone: the organization's name is written by whoever made it.
MAIL_SUBJECT = "You're invited to an organization on NeXeonAI"
PENDING_SESSION = "pending_invitation"


@transaction.atomic
def invitation_create(
    *,
    organization: Organization,
    email: str,
    role: str,
    invited_by: User,
    accept_url: Callable[[str], str],
) -> Invitation:
    """Invite an email; `accept_url(token)` builds the link that the mail carries. A still
    open invitation to the same address is replaced (its link stops working)."""
    # One organization's invitations are counted one sender at a time.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    email = User.objects.normalize_email(email).lower()
    if Membership.objects.filter(organization=organization, user__email=email).exists():
        raise MembershipError(f"{email} is already a member.")
    now = timezone.now()
    sent = Invitation.objects.filter(
        organization=organization, created_at__gt=now - timedelta(hours=1)
    )
    if sent.count() >= settings.INVITATIONS_PER_HOUR:
        oldest = sent.order_by("created_at").first().created_at  # type: ignore[union-attr]  # (count > 0)
        minutes = max(1, round((oldest + timedelta(hours=1) - now).total_seconds() / 60))
        raise MembershipError(
            f"This organization has sent {settings.INVITATIONS_PER_HOUR} invitations in the "
            f"last hour, the most allowed. Try again in {minutes} minutes."
        )
    _open(organization.invitations.filter(email=email)).update(withdrawn_at=now)
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token=get_random_string(40),
        invited_by=invited_by,
        created_at=now,
        expires_at=now + timedelta(days=settings.INVITATION_EXPIRY_DAYS),
    )
    link = accept_url(invitation.token)
    body = (
        f"{invited_by.email} invited you to join the organization “{organization.name}” on "
        f"NeXeonAI as {Role(role).label.lower()}.\n\n"
        f"Accept: {link}\n\n"
        "No account yet? The link lets you sign up with this email address first.\n"
        f"The link works until {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n"
    )
    transaction.on_commit(lambda: send_mail(MAIL_SUBJECT, body, None, [email]))
    return invitation


def open_invitations(organization: Organization):
    return _open(organization.invitations.all()).order_by("-created_at")


def _open(invitations):
    return invitations.filter(
        accepted_at__isnull=True, withdrawn_at__isnull=True, expires_at__gt=timezone.now()
    )


def invitation_withdraw(*, invitation: Invitation) -> Invitation:
    if invitation.state == "open":
        invitation.withdrawn_at = timezone.now()
        invitation.save(update_fields=["withdrawn_at"])
    return invitation


REFUSALS = {
    "accepted": "This invitation was already used.",
    "withdrawn": "This invitation was withdrawn by the organization.",
    "expired": "This invitation has expired: ask for a new one.",
}


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.state != "open":
        raise MembershipError(REFUSALS[invitation.state])
    if user.email.lower() != invitation.email:
        raise MembershipError(
            f"This invitation was sent to {invitation.email}: log in with that address."
        )
    membership, _ = Membership.objects.get_or_create(
        organization=invitation.organization, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    return membership


def remember_pending(request: HttpRequest, invitation: Invitation) -> None:
    """A visitor who is not logged in opened the link: it is accepted when they log in,
    after signing up and verifying their email if they must (see accept_pending)."""
    request.session[PENDING_SESSION] = invitation.token


def accept_pending(request: HttpRequest, user: User) -> Membership | None:
    """At login: the invitation this session carries, accepted; None if there is none.
    A refusal (another address, expired, withdrawn) raises MembershipError; either way the
    session forgets the invitation."""
    token = request.session.pop(PENDING_SESSION, None)
    invitation = Invitation.objects.filter(token=token).first() if token else None
    if invitation is None:
        return None
    return invitation_accept(invitation=invitation, user=user)
