"""The project's URLs: the probes, /metrics, the admin (behind allauth's login), allauth,
the management API, and each app's pages. /v1 calls and WebSockets are routed elsewhere
before Django (nexeon/asgi.py)."""

from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from nexeon import health
from nexeon.admin_access import admin_login, admin_password_change
from usage.metrics import metrics_view

# Staff sign in through allauth (TOTP, throttling), never through the admin's own form.
admin.site.login = admin_login  # type: ignore[method-assign]
admin.site.password_change = admin_password_change  # type: ignore[method-assign]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/", include("accounts.api.urls")),
    path("", include("apigateway.urls")),
    path("", include("billing.urls")),
    path("", include("usage.urls")),
    path("", include("accounts.urls")),
    path("", account_views.home, name="home"),
]
