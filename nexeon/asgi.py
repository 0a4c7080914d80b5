"""ASGI entry point: `uvicorn nexeon.asgi:application`.

/v1/… goes straight to the gateway (a bare ASGI app: no Django middleware, no thread hops);
WebSockets (the usage page's live feed, /ws/usage/) to Channels; everything else —
dashboard, admin, allauth, webhooks, probes — to Django.
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402

from apigateway.app import application as gateway_application  # noqa: E402  (after setup)
from apigateway.app import finish_in_flight  # noqa: E402
from apigateway.dbsync import run_sync  # noqa: E402
from apigateway.provider_report import log_startup  # noqa: E402
from apigateway.server import is_gateway_path  # noqa: E402
from credit.checks import check_eviction_policy  # noqa: E402
from usage.routing import websocket_application  # noqa: E402  (after setup)


async def lifespan(receive, send) -> None:
    """uvicorn's startup and shutdown (run it with `--lifespan on`). At shutdown, after the
    grace period (`--timeout-graceful-shutdown`), the calls that were cut short get a few
    seconds to settle their credit and queue their usage before the process exits."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                check_eviction_policy()
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await run_sync(log_startup)  # the providers and models this process serves
            # What is loaded by now lives as long as the process: out of the cyclic
            # collector's sight, so that its full passes do not walk all of it.
            gc.collect()
            gc.freeze()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await finish_in_flight(settings.GATEWAY_SHUTDOWN_SETTLE_SECONDS)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if is_gateway_path(scope.get("path", "")):
        await gateway_application(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket_application(scope, receive, send)
    else:
        await django_application(scope, receive, send)
