"""Members of the current organization: list, invite, withdraw, change role, remove, accept.

Role changes and removals ask first: a GET shows what will happen (a page of its own, so
it works without script), the POST from that page acts.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import invitations, services
from accounts.current import SESSION_KEY, can_manage, current_membership, page_context
from accounts.models import Invitation, Membership, Role
from accounts.requests import AuthenticatedHttpRequest


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


def _manager(request: AuthenticatedHttpRequest) -> Membership:
    membership = current_membership(request)
    if not can_manage(membership):
        raise PermissionDenied("Only owners and admins manage members.")
    return membership


@login_required
def members(request: AuthenticatedHttpRequest) -> HttpResponse:
    membership = current_membership(request)
    return _members_page(request, membership, InviteForm())


def _members_page(
    request: AuthenticatedHttpRequest, membership: Membership, form: InviteForm, status: int = 200
) -> HttpResponse:
    organization = membership.organization
    return render(
        request,
        "dashboard/members.html",
        page_context(
            request,
            membership,
            members=organization.memberships.select_related("user").order_by("created_at"),
            invitations=invitations.open_invitations(organization),
            can_manage=can_manage(membership),
            form=form,
            roles=Role.choices,
        ),
        status=status,
    )


@login_required
@require_POST
def member_invite(request: AuthenticatedHttpRequest) -> HttpResponse:
    membership = _manager(request)
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Invitation not sent: see the errors below.")
        return _members_page(request, membership, form, status=400)
    if form.cleaned_data["role"] == Role.OWNER and membership.role != Role.OWNER:
        raise PermissionDenied("Only owners invite owners.")
    try:
        invitations.invitation_create(
            organization=membership.organization,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=request.user,
            accept_url=lambda token: request.build_absolute_uri(
                reverse("invitation_accept", args=[token])
            ),
        )
    except services.MembershipError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
    return redirect("members")


@login_required
@require_POST
def invitation_withdraw(request: AuthenticatedHttpRequest, invitation_id: int) -> HttpResponse:
    membership = _manager(request)
    invitation = get_object_or_404(
        Invitation, pk=invitation_id, organization=membership.organization
    )
    invitations.invitation_withdraw(invitation=invitation)
    messages.success(request, f"Invitation to {invitation.email} withdrawn.")
    return redirect("members")


def _confirm(request: AuthenticatedHttpRequest, membership: Membership, **what) -> HttpResponse:
    return render(
        request,
        "dashboard/confirm.html",
        page_context(request, membership, cancel_url=reverse("members"), **what),
    )


@login_required
def member_role(request: AuthenticatedHttpRequest, membership_id: int) -> HttpResponse:
    by = _manager(request)
    target = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, organization=by.organization
    )
    form = RoleForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        messages.error(request, "Choose a role: owner, admin or member.")
        return redirect("members")
    role = Role(form.cleaned_data["role"])
    if request.method != "POST":
        if role == target.role:
            return redirect("members")
        return _confirm(
            request,
            by,
            title=f"Make {target.user.email} {role.label.lower()}?",
            consequence=f"{target.user.email} is {target.get_role_display().lower()} now. "
            + ROLE_POWERS[role],
            confirm_label=f"Make {role.label.lower()}",
            confirm_class="primary",
            fields={"role": role.value},
        )
    try:
        services.membership_change_role(membership=target, role=role, by=by)
    except services.MembershipError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{target.user.email} is now {role.label.lower()}.")
    return redirect("members")


ROLE_POWERS = {
    Role.OWNER: "Owners can do everything, including managing other owners.",
    Role.ADMIN: "Admins manage keys and members, but not owners.",
    Role.MEMBER: "Members read keys, members and usage, and change nothing.",
}


@login_required
def member_remove(request: AuthenticatedHttpRequest, membership_id: int) -> HttpResponse:
    by = _manager(request)
    target = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, organization=by.organization
    )
    if request.method != "POST":
        return _confirm(
            request,
            by,
            title=f"Remove {target.user.email} from {by.organization.name}?",
            consequence="They lose access to this organization's keys, usage and billing "
            "at once. Their API keys keep working until you revoke them.",
            confirm_label="Remove member",
        )
    try:
        services.membership_remove(membership=target, by=by)
    except services.MembershipError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{target.user.email} was removed.")
    return redirect("members")


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Anyone with the link sees the invitation; accepting needs a login with its email.
    A visitor without one signs up (and verifies) first: the session carries the
    invitation, and the login accepts it (accounts/adapters.py)."""
    invitation = get_object_or_404(
        Invitation.objects.select_related("organization", "invited_by"), token=token
    )
    state = invitation.state
    if state == "open" and not request.user.is_authenticated:
        invitations.remember_pending(request, invitation)
    if request.method == "POST" and request.user.is_authenticated:
        try:
            joined = invitations.invitation_accept(invitation=invitation, user=request.user)
        except services.MembershipError as error:
            messages.error(request, str(error))
            return redirect("home")
        request.session[SESSION_KEY] = joined.organization_id
        messages.success(request, f"You joined {joined.organization.name}.")
        return redirect("home")
    return render(
        request,
        "dashboard/invitation.html",
        {"invitation": invitation, "state": state, "refusal": invitations.REFUSALS.get(state)},
        status=200 if state == "open" else 410,
    )
