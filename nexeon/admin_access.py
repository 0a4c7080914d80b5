"""Who reaches Django's admin, and from where.

The admin's own login form checks a password and nothing else: no TOTP step, no failed-login
throttling. So nobody signs in there: /admin/login/ sends everyone to allauth's login (which
asks for the TOTP code and counts failures) and back, and the admin's password change goes
to allauth's (which revokes the user's management tokens). ADMIN_ALLOWED_NETWORKS, when set,
keeps the whole admin to those networks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """Stands in for AdminSite.login: never checks a password itself."""
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = ""
    target = target or reverse("admin:index")
    if not request.user.is_authenticated:
        query = urlencode({REDIRECT_FIELD_NAME: target})
        return HttpResponseRedirect(f"{resolve_url(settings.LOGIN_URL)}?{query}")
    if request.user.is_active and request.user.is_staff:
        return HttpResponseRedirect(target)
    raise PermissionDenied("The admin is for staff.")


def admin_password_change(request: HttpRequest, extra_context: dict | None = None):
    """Stands in for AdminSite.password_change: allauth's form, as for every user."""
    return redirect("account_change_password")


def parse_networks(values: list[str]) -> list[Network]:
    """CIDR ranges (a bare address is a range of one); ValueError names no value."""
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip()]


def client_in(networks: list[Network], address: str) -> bool:
    """REMOTE_ADDR is the client's own address: uvicorn put it there from X-Forwarded-For
    only when the peer is one of FORWARDED_ALLOW_IPS (settings, the gateway section)."""
    try:
        client = ipaddress.ip_address(address)
    except ValueError:  # a Unix socket peer, or nothing: not in any network
        return False
    return any(client.version == network.version and client in network for network in networks)


class AdminNetworkMiddleware:
    """Answers 404 for every admin URL to a client outside ADMIN_ALLOWED_NETWORKS (unset:
    any client), so the admin does not even show that it exists."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        match = request.resolver_match
        if match is None or match.app_name != "admin" or not settings.ADMIN_ALLOWED_NETWORKS:
            return None
        networks = parse_networks(settings.ADMIN_ALLOWED_NETWORKS)
        if not client_in(networks, request.META.get("REMOTE_ADDR", "")):
            raise Http404
        return None
