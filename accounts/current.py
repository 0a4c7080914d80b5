"""The organization a dashboard request acts on (chosen in the session, checked every
time), who may manage it, and what every dashboard page renders of it."""

from __future__ import annotations

from accounts.models import Membership, Role
from accounts.requests import AuthenticatedHttpRequest
from accounts.services import personal_organization_get_or_create

SESSION_KEY = "organization_id"
MANAGER_ROLES = {Role.OWNER, Role.ADMIN}


def current_membership(request: AuthenticatedHttpRequest) -> Membership:
    """The user's membership in the session's organization, else their first one."""
    memberships = Membership.objects.select_related("organization").filter(user=request.user)
    chosen = request.session.get(SESSION_KEY)
    membership = None
    if chosen is not None:
        membership = memberships.filter(organization_id=chosen).first()
    if membership is None:
        membership = memberships.order_by("-organization__is_personal", "created_at").first()
    if membership is None:
        # Users made outside sign-up (createsuperuser, the admin) get their organization here.
        organization = personal_organization_get_or_create(user=request.user)
        membership = memberships.get(organization=organization)
    request.session[SESSION_KEY] = membership.organization_id
    return membership


def can_manage(membership: Membership) -> bool:
    """Owners and admins manage the organization: its keys, its members, its credit
    purchases."""
    return membership.role in MANAGER_ROLES


def page_context(request: AuthenticatedHttpRequest, membership: Membership, **extra) -> dict:
    """What every dashboard page renders: the membership and the switcher's organizations."""
    from accounts.selectors import organizations_for_user

    return {
        "membership": membership,
        "organizations": organizations_for_user(user=request.user),
        **extra,
    }
