"""Dashboard pages. Each view: check membership, call one service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import services
from accounts.current import SESSION_KEY, can_manage_keys, current_membership, page_context
from accounts.forms import ApiKeyCreateForm, ApiKeyRenameForm
from accounts.models import ApiKey, Membership
from accounts.plans import organization_limits
from apigateway.provider_report import serving
from billing.money import format_usd
from billing.purchases import stripe_configured
from billing.selectors import organization_balance_nanos, organization_month_usage

NEW_KEY_SESSION = "new_api_key"
EXAMPLE_MODEL = "gpt-4o-mini"


def home(request: HttpRequest) -> HttpResponse:
    api_base = request.build_absolute_uri("/v1")
    if not request.user.is_authenticated:
        return render(request, "home.html", {"api_base": api_base})
    membership = current_membership(request)
    organization = membership.organization
    spent, requests = organization_month_usage(organization=organization)
    balance = organization_balance_nanos(organization=organization)
    now = serving()
    return render(
        request,
        "dashboard/overview.html",
        page_context(
            request,
            membership,
            api_base=api_base,
            balance=format_usd(balance),
            spent=format_usd(spent),
            requests=requests,
            no_balance=balance <= 0,
            purchases=stripe_configured(),
            can_buy=can_manage_keys(membership),
            # The snippets' model: one that answers here as they are pasted.
            example_model=EXAMPLE_MODEL if now.providers or not now.demo_model else now.demo_model,
        ),
    )


def api_docs(request: HttpRequest) -> HttpResponse:
    """The public API reference (docs/api-reference.txt) with this host's base URL."""
    return render(request, "docs/api.html", {"api_base": request.build_absolute_uri("/v1")})


@login_required
def keys(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    return render(
        request,
        "dashboard/keys.html",
        page_context(
            request,
            membership,
            keys=membership.organization.api_keys.order_by("-created_at"),
            form=ApiKeyCreateForm(),
            new_key=request.session.pop(NEW_KEY_SESSION, None),
            can_manage=can_manage_keys(membership),
            api_base=request.build_absolute_uri("/v1"),
            plan=membership.organization.plan,
            limits=organization_limits(membership.organization),
        ),
    )


def _key_manager(request: HttpRequest) -> Membership:
    membership = current_membership(request)
    if not can_manage_keys(membership):
        raise PermissionDenied("Only owners and admins manage API keys.")
    return membership


@login_required
@require_POST
def key_create(request: HttpRequest) -> HttpResponse:
    membership = _key_manager(request)
    form = ApiKeyCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The key was not created: " + form.errors.as_text())
        return redirect("keys")
    created = services.api_key_create(
        organization=membership.organization, created_by=request.user, **form.service_arguments()
    )
    # Shown once, on the next page, then gone from the session.
    request.session[NEW_KEY_SESSION] = {"name": created.api_key.name, "key": created.plaintext}
    return redirect("keys")


@login_required
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    membership = _key_manager(request)
    api_key = get_object_or_404(ApiKey, pk=key_id, organization=membership.organization)
    services.api_key_revoke(api_key=api_key)
    messages.success(request, f"Key “{api_key.name}” revoked.")
    return redirect("keys")


@login_required
@require_POST
def key_rename(request: HttpRequest, key_id: int) -> HttpResponse:
    membership = _key_manager(request)
    api_key = get_object_or_404(ApiKey, pk=key_id, organization=membership.organization)
    form = ApiKeyRenameForm(request.POST)
    if form.is_valid():
        services.api_key_rename(api_key=api_key, name=form.cleaned_data["name"])
    return redirect("keys")


@login_required
@require_POST
def organization_switch(request: HttpRequest) -> HttpResponse:
    membership = get_object_or_404(
        Membership, user=request.user, organization_id=request.POST.get("organization")
    )
    request.session[SESSION_KEY] = membership.organization_id
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    return redirect(target if target and safe else "home")
