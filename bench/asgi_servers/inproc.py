"""In-process cost of one Django ASGI request (no server, no sockets)."""

import asyncio
import cProfile
import os
import pstats
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
import uvloop
from benchproj.asgi import application

SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/ping",
    "raw_path": b"/ping",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1")],
    "client": ("127.0.0.1", 1),
    "server": ("127.0.0.1", 8000),
}


async def one():
    sent = []
    ev = asyncio.Event()
    calls = [0]

    async def receive():
        calls[0] += 1
        if calls[0] == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await ev.wait()
        return {"type": "http.disconnect"}

    async def send(m):
        sent.append(m)

    await application(dict(SCOPE), receive, send)
    assert sent[0]["status"] == 200, sent[0]


async def main(n):
    for _ in range(200):
        await one()
    t = time.perf_counter()
    for _ in range(n):
        await one()
    dt = time.perf_counter() - t
    print(f"{n} req in {dt:.2f}s -> {dt / n * 1e6:.0f} us/req, {n / dt:.0f} req/s (in-process)")


uvloop.run(main(3000))
if "--prof" in sys.argv:
    pr = cProfile.Profile()
    pr.enable()
    uvloop.run(main(1000))
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(12)
