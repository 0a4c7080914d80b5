"""Members of the current organization: list, invite, change role, remove, accept."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import services
from accounts.current import SESSION_KEY, can_manage_keys, current_membership, page_context
from accounts.models import Invitation, Membership, Role


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


def _manager(request: HttpRequest) -> Membership:
    membership = current_membership(request)
    if not can_manage_keys(membership):  # owners and admins manage members too
        raise PermissionDenied("Only owners and admins manage members.")
    return membership


@login_required
def members(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    organization = membership.organization
    return render(
        request,
        "dashboard/members.html",
        page_context(
            request,
            membership,
            members=organization.memberships.select_related("user").order_by("created_at"),
            invitations=organization.invitations.filter(accepted_at__isnull=True),
            can_manage=can_manage_keys(membership),
            form=InviteForm(),
            roles=Role.choices,
        ),
    )


@login_required
@require_POST
def member_invite(request: HttpRequest) -> HttpResponse:
    membership = _manager(request)
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Invitation not sent: " + form.errors.as_text())
        return redirect("members")
    if form.cleaned_data["role"] == Role.OWNER and membership.role != Role.OWNER:
        raise PermissionDenied("Only owners invite owners.")
    try:
        services.invitation_create(
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
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    by = _manager(request)
    target = get_object_or_404(Membership, pk=membership_id, organization=by.organization)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_change_role(
                membership=target, role=form.cleaned_data["role"], by=by
            )
        except services.MembershipError as error:
            messages.error(request, str(error))
    return redirect("members")


@login_required
@require_POST
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    by = _manager(request)
    target = get_object_or_404(Membership, pk=membership_id, organization=by.organization)
    try:
        services.membership_remove(membership=target, by=by)
    except services.MembershipError as error:
        messages.error(request, str(error))
    return redirect("members")


@login_required
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = get_object_or_404(Invitation, token=token)
    if request.method == "POST":
        try:
            joined = services.invitation_accept(invitation=invitation, user=request.user)
        except services.MembershipError as error:
            messages.error(request, str(error))
            return redirect("home")
        request.session[SESSION_KEY] = joined.organization_id
        return redirect("home")
    return render(request, "dashboard/invitation.html", {"invitation": invitation})
