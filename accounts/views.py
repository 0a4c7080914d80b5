"""The home page (the dashboard's overview once signed in), the API docs page, the API
keys pages and the organization switcher. Each view: check membership, call one service,
render."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import services
from accounts.current import SESSION_KEY, can_manage, current_membership, page_context
from accounts.forms import ApiKeyCreateForm, ApiKeyEditForm, ApiKeyRenameForm
from accounts.models import ApiKey, Membership
from accounts.plans import organization_limits
from accounts.requests import AuthenticatedHttpRequest
from apigateway.provider_report import serving
from billing.money import format_usd
from billing.purchases import stripe_configured
from billing.selectors import organization_balance_nanos, organization_month_usage

EXAMPLE_MODEL = "gpt-4o-mini"


def home(request: HttpRequest) -> HttpResponse:
    api_base = request.build_absolute_uri("/v1")
    if not request.user.is_authenticated:
        return render(request, "home.html", {"api_base": api_base})
    signed_in = cast(AuthenticatedHttpRequest, request)  # (mypy does not narrow request.user)
    membership = current_membership(signed_in)
    organization = membership.organization
    spent, requests = organization_month_usage(organization=organization)
    balance = organization_balance_nanos(organization=organization)
    serving_now = serving()
    return render(
        request,
        "dashboard/overview.html",
        page_context(
            signed_in,
            membership,
            api_base=api_base,
            balance=format_usd(balance),
            spent=format_usd(spent),
            requests=requests,
            no_balance=balance <= 0,
            purchases=stripe_configured(),
            can_buy=can_manage(membership),
            # The snippets' model: one that answers here as they are pasted.
            example_model=(
                EXAMPLE_MODEL
                if serving_now.providers or not serving_now.demo_model
                else serving_now.demo_model
            ),
        ),
    )


DOCS_LANGUAGES = (("curl", "curl"), ("python", "Python"), ("node", "Node"))


def api_docs(request: HttpRequest) -> HttpResponse:
    """The public API reference (docs/api-reference.txt) with this host's base URL; every
    endpoint's examples are templates/docs/examples/<name>.<curl|python|node>."""
    return render(
        request,
        "docs/api.html",
        {
            "api_base": request.build_absolute_uri("/v1"),
            "api_root": request.build_absolute_uri("/").rstrip("/"),  # Anthropic's SDK adds /v1
            "languages": DOCS_LANGUAGES,
            "curl_only": DOCS_LANGUAGES[:1],
        },
    )


@login_required
def keys(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _keys_page(request, current_membership(request), ApiKeyCreateForm())


def _keys_page(
    request: AuthenticatedHttpRequest, membership: Membership, form: ApiKeyCreateForm, new_key=None
) -> HttpResponse:
    return render(
        request,
        "dashboard/keys.html",
        page_context(
            request,
            membership,
            keys=membership.organization.api_keys.order_by("-created_at"),
            form=form,
            new_key=new_key,
            can_manage=can_manage(membership),
            api_base=request.build_absolute_uri("/v1"),
            plan=membership.organization.plan,
            limits=organization_limits(membership.organization),
        ),
    )


def _key_manager(request: AuthenticatedHttpRequest) -> Membership:
    membership = current_membership(request)
    if not can_manage(membership):
        raise PermissionDenied("Only owners and admins manage API keys.")
    return membership


@login_required
@require_POST
def key_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    membership = _key_manager(request)
    form = ApiKeyCreateForm(request.POST)
    if form.is_valid():
        try:
            created = services.api_key_create(
                organization=membership.organization,
                created_by=request.user,
                **form.service_arguments(),
            )
        except services.InvalidKeySetting as error:
            form.add_service_error(error.field, str(error))
        else:
            # The secret is in this answer only: never in the session, never cached.
            new_key = {"name": created.api_key.name, "key": created.plaintext}
            response = _keys_page(request, membership, ApiKeyCreateForm(), new_key=new_key)
            add_never_cache_headers(response)
            return response
    messages.error(request, "The key was not created: see the errors below.")
    return _keys_page(request, membership, form)


@login_required
def key_edit(request: AuthenticatedHttpRequest, key_id: int) -> HttpResponse:
    membership = _key_manager(request)
    api_key = get_object_or_404(ApiKey, pk=key_id, organization=membership.organization)
    if api_key.revoked_at is not None:
        messages.error(request, f"Key “{api_key.name}” is revoked: it cannot be changed.")
        return redirect("keys")
    form = ApiKeyEditForm(request.POST or None, api_key=api_key)
    if request.method == "POST" and form.is_valid():
        try:
            services.api_key_update(api_key=api_key, **form.service_arguments())
        except services.InvalidKeySetting as error:
            form.add_service_error(error.field, str(error))
        else:
            messages.success(request, f"Key “{form.cleaned_data['name']}” saved.")
            return redirect("keys")
    return render(
        request,
        "dashboard/key_edit.html",
        page_context(request, membership, api_key=api_key, form=form),
    )


@login_required
def key_revoke(request: AuthenticatedHttpRequest, key_id: int) -> HttpResponse:
    """GET asks (a page of its own: works without script), POST revokes."""
    membership = _key_manager(request)
    api_key = get_object_or_404(ApiKey, pk=key_id, organization=membership.organization)
    if request.method != "POST":
        return render(
            request,
            "dashboard/confirm.html",
            page_context(
                request,
                membership,
                title=f"Revoke the key “{api_key.name}”?",
                consequence=f"Every call made with {api_key.prefix}… is refused within "
                "seconds. This cannot be undone: you would create a new key.",
                confirm_label="Revoke key",
                cancel_url=reverse("keys"),
            ),
        )
    services.api_key_revoke(api_key=api_key)
    messages.success(request, f"Key “{api_key.name}” revoked.")
    return redirect("keys")


@login_required
@require_POST
def key_rename(request: AuthenticatedHttpRequest, key_id: int) -> HttpResponse:
    membership = _key_manager(request)
    api_key = get_object_or_404(ApiKey, pk=key_id, organization=membership.organization)
    form = ApiKeyRenameForm(request.POST)
    if form.is_valid():
        try:
            services.api_key_rename(api_key=api_key, name=form.cleaned_data["name"])
        except services.InvalidKeySetting as error:
            messages.error(request, str(error))
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
