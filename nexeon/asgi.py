"""ASGI entry point: `uvicorn nexeon.asgi:application`.

/v1/… goes straight to the gateway (a bare ASGI app: no Django middleware, no thread hops);
WebSockets (the usage page's live feed, /ws/usage/) to Channels; everything else —
dashboard, admin, allauth, webhooks, probes — to Django.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")

django_application = get_asgi_application()

from apigateway.app import application as gateway_application  # noqa: E402  (after setup)
from usage.routing import websocket_application  # noqa: E402  (after setup)


async def application(scope, receive, send):
    path = scope.get("path", "")
    if path.startswith("/v1/") or path == "/v1":
        await gateway_application(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket_application(scope, receive, send)
    else:
        await django_application(scope, receive, send)
