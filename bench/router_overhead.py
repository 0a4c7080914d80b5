import asyncio, os, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")
os.environ.setdefault("SECRET_KEY", "x")
import django
django.setup()
from django.urls import re_path
from channels.routing import URLRouter, ProtocolTypeRouter

async def leaf(scope, receive, send):
    return None

async def dispatcher(scope, receive, send):
    path = scope.get("path", "")
    if path.startswith("/v1/") or path == "/v1":
        await leaf(scope, receive, send)
    else:
        await leaf(scope, receive, send)

channels_app = ProtocolTypeRouter({"http": URLRouter([re_path(r"^v1/", leaf), re_path(r"", leaf)])})

async def run(app, n=50000):
    scope = {"type": "http", "path": "/v1/chat/completions", "method": "POST", "headers": [], "query_string": b""}
    t = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), None, None)
    return (time.perf_counter() - t) / n * 1e6

for name, app in (("prefix dispatcher", dispatcher), ("channels ProtocolTypeRouter+URLRouter", channels_app)):
    print(name, f"{min(asyncio.run(run(app)) for _ in range(3)):.2f} us/request")
