"""Settings: create or rename organizations, and the user's REST API management tokens."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import services
from accounts.current import current_membership, page_context
from accounts.forms import ManagementTokenForm
from accounts.models import ManagementToken, Membership, Role
from accounts.requests import AuthenticatedHttpRequest


class NameForm(forms.Form):
    name = forms.CharField(max_length=120)


def _settings_page(
    request: AuthenticatedHttpRequest,
    membership: Membership,
    *,
    token_form: ManagementTokenForm | None = None,
    status: int = 200,
    **extra,
) -> HttpResponse:
    if token_form is None:
        token_form = ManagementTokenForm(
            user=request.user, initial={"organization": membership.organization_id}
        )
    return render(
        request,
        "dashboard/settings.html",
        page_context(
            request,
            membership,
            tokens=request.user.management_tokens.select_related("organization").order_by(
                "-created_at"
            ),
            token_form=token_form,
            is_owner=membership.role == Role.OWNER,
            created=_just_created(request, membership),
            **extra,
        ),
        status=status,
    )


def _just_created(request: AuthenticatedHttpRequest, membership: Membership) -> Membership | None:
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
def settings_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _settings_page(request, current_membership(request))


@login_required
@require_POST
def organization_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = NameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The organization was not created: it needs a name.")
        return redirect("settings")
    organization = services.organization_create(name=form.cleaned_data["name"], owner=request.user)
    return redirect(f"{reverse('settings')}?created={organization.pk}")


@login_required
@require_POST
def organization_rename(request: AuthenticatedHttpRequest) -> HttpResponse:
    membership = current_membership(request)
    if membership.role != Role.OWNER:
        raise PermissionDenied("Only owners rename an organization.")
    form = NameForm(request.POST)
    if form.is_valid():
        services.organization_rename(
            organization=membership.organization, name=form.cleaned_data["name"]
        )
    return redirect("settings")


@never_cache  # the answer holds the token: no cache, proxy or back button keeps it
@login_required
@require_POST
def token_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The new token is shown in this answer itself, once: never in the session (which the
    database keeps until the session expires), never behind a redirect."""
    membership = current_membership(request)
    form = ManagementTokenForm(request.POST, user=request.user)
    if not form.is_valid():
        return _settings_page(request, membership, token_form=form, status=400)
    try:
        token, plaintext = services.management_token_create(
            user=request.user, **form.service_arguments()
        )
    except ValueError as error:  # the membership ended since the form was checked
        form.add_error("organization", str(error))
        return _settings_page(request, membership, token_form=form, status=400)
    return _settings_page(request, membership, new_token={"token": token, "plaintext": plaintext})


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ManagementToken, pk=token_id, user=request.user)
    services.management_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("settings")
