"""WebSocket routes (the ASGI entry point sends scope type "websocket" here)."""

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator, WebsocketDenier
from django.urls import path, re_path

from usage.consumers import UsageLiveConsumer

websocket_urlpatterns = [
    path("ws/usage/", UsageLiveConsumer.as_asgi()),
    re_path(r"", WebsocketDenier.as_asgi()),  # any other path: refused, not an exception
]

# Origin checked against ALLOWED_HOSTS (a page on another site cannot open the socket with
# the user's cookies); then the session and user, as for a dashboard page.
websocket_application = AllowedHostsOriginValidator(
    AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
)
