"""Request types of the views behind a login: their user is a User, not AnonymousUser.

django-stubs types `request.user` as `User | AnonymousUser`; a view that only runs for a
signed-in user (login_required, the API's authentication) annotates its request with these.
"""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    user: User


class AuthenticatedRequest(Request):
    user: User
