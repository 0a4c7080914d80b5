from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.selectors import organizations_for_user


def home(request: HttpRequest) -> HttpResponse:
    organizations = (
        organizations_for_user(user=request.user) if request.user.is_authenticated else []
    )
    api_base = request.build_absolute_uri("/v1")
    return render(request, "home.html", {"organizations": organizations, "api_base": api_base})
