"""The REST API's reference page (Redoc, served from drf-spectacular-sidecar's files)."""

from __future__ import annotations

from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView

# Redoc styles itself with <style> elements it writes at run time and searches in a Worker
# made from a blob: URL. This page alone allows both; it shows the schema, no user's data,
# and it still runs only scripts from this origin. Its sidebar's logo, which it asks for
# from Redocly's CDN, stays refused (img-src): Redoc hides the image when it fails.
REDOC_CSP = {"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]}


@method_decorator(csp_update(REDOC_CSP), name="dispatch")
class RedocPage(SpectacularRedocView):
    # Our template: the sidecar's script and a static starter, no inline script, no fonts
    # from elsewhere (the package's template has both).
    template_name = "api/redoc.html"
