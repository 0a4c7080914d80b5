"""Settings: create or rename organizations, and the user's REST API management tokens."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from accounts import services
from accounts.current import current_membership, page_context
from accounts.models import ManagementToken, Membership, Role


class NameForm(forms.Form):
    name = forms.CharField(max_length=120)


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    return _settings_page(request, current_membership(request))


def _settings_page(request: HttpRequest, membership: Membership, new_token=None) -> HttpResponse:
    return render(
        request,
        "dashboard/settings.html",
        page_context(
            request,
            membership,
            tokens=request.user.management_tokens.order_by("-created_at"),
            new_token=new_token,
            is_owner=membership.role == Role.OWNER,
            created=_just_created(request, membership),
        ),
    )


def _just_created(request: HttpRequest, membership: Membership) -> Membership | None:
    """The organization named by ?created= (one of the user's, not the current one): the
    page offers to switch to it rather than switching behind the user's back."""
    created = request.GET.get("created", "")
    if not created.isdigit() or int(created) == membership.organization_id:
        return None
    return (
        Membership.objects.select_related("organization")
        .filter(user=request.user, organization_id=int(created))
        .first()
    )


@login_required
@require_POST
def organization_create(request: HttpRequest) -> HttpResponse:
    form = NameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The organization was not created: it needs a name.")
        return redirect("settings")
    organization = services.organization_create(name=form.cleaned_data["name"], owner=request.user)
    return redirect(f"{reverse('settings')}?created={organization.pk}")


@login_required
@require_POST
def organization_rename(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    if membership.role != Role.OWNER:
        raise PermissionDenied("Only owners rename an organization.")
    form = NameForm(request.POST)
    if form.is_valid():
        services.organization_rename(
            organization=membership.organization, name=form.cleaned_data["name"]
        )
    return redirect("settings")


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = NameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The token was not created: it needs a name.")
        return redirect("settings")
    token, plaintext = services.management_token_create(
        user=request.user, name=form.cleaned_data["name"]
    )
    # The secret is in this answer only: never in the session, never cached.
    new_token = {"name": token.name, "token": plaintext}
    response = _settings_page(request, current_membership(request), new_token=new_token)
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ManagementToken, pk=token_id, user=request.user)
    services.management_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("settings")
