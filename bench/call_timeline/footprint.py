"""How much distinct code one /v1 call runs: the gateway served in this process (HTTP =
uvicorn's http option, default httptools), shared/bench's fake upstream already on
127.0.0.1:18000; sys.setprofile counts, over CALLS calls made one after another from
another thread, the Python calls, C calls and distinct functions the server's thread runs
(STREAM=1: streamed chat calls, with stream_options.include_usage).
After a wait on the provider every distinct piece of code costs its cache misses again
(docs/benchmarks/cold-path-experiments.md), so this is the figure to shrink.

    HTTP=apigateway.server:GatewayHttpProtocol .venv/bin/python bench/call_timeline/footprint.py KEY
(bench environment: DATABASE_URL .../nexeon_bench, REDIS_URL .../2, OPENAI_BASE_URL to the fake)
"""

import asyncio
import collections
import os
import sys
import threading
import time

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")
import http.client  # noqa: E402

import uvicorn  # noqa: E402

KEY = sys.argv[1]
CALLS = int(os.environ.get("CALLS", "50"))
PORT = int(os.environ.get("PORT", "8121"))
STREAM = os.environ.get("STREAM") == "1"
BODY = (
    b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}],'
    b' "max_tokens": 64'
    + (b', "stream": true, "stream_options": {"include_usage": true}}' if STREAM else b"}")
)
python_calls = collections.Counter()
c_calls = collections.Counter()


def profile(frame, event, arg):
    if event == "call":
        code = frame.f_code
        python_calls[(code.co_filename, code.co_firstlineno, code.co_qualname)] += 1
    elif event == "c_call":
        c_calls[getattr(arg, "__qualname__", repr(arg))] += 1


def client(done: threading.Event, window: dict) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", PORT)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def call():
        conn.request("POST", "/v1/chat/completions", BODY, headers)
        response = conn.getresponse()
        assert response.status == 200, response.read()
        response.read()

    for _ in range(200):  # warm: leases taken, pools open
        call()
    window["on"] = True
    time.sleep(0.2)
    for _ in range(CALLS):
        call()
        time.sleep(0.01)
    window["on"] = False
    time.sleep(0.2)
    done.set()


async def main() -> None:
    from nexeon.asgi import application

    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=PORT,
        loop="none",
        http=os.environ.get("HTTP", "httptools"),
        log_level="warning",
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    done, window = threading.Event(), {"on": False}
    threading.Thread(target=client, args=(done, window), daemon=True).start()
    while not window["on"]:
        await asyncio.sleep(0.01)
    sys.setprofile(profile)
    while window["on"]:
        await asyncio.sleep(0.01)
    sys.setprofile(None)
    server.should_exit = True
    await serving
    per_call = sum(python_calls.values()) / CALLS
    print(
        f"{os.environ.get('HTTP', 'httptools')}{' (streamed)' if STREAM else ''}: per call {per_call:.0f} Python calls, "
        f"{sum(c_calls.values()) / CALLS:.0f} C calls; distinct Python functions "
        f"{len(python_calls)}, C functions {len(c_calls)}"
    )
    by_file = collections.Counter()
    for (filename, _, _), count in python_calls.items():
        by_file[filename.split("site-packages/")[-1].replace(os.getcwd() + "/", "")] += count
    for filename, count in by_file.most_common(25):
        print(f"  {count / CALLS:7.1f}  {filename}")
    if os.environ.get("FUNCTIONS") == "1":  # every function, as often as a call runs it
        for (filename, line, name), count in sorted(python_calls.items()):
            short = filename.split("site-packages/")[-1].replace(os.getcwd() + "/", "")
            print(f"  {count / CALLS:5.1f}  {short}:{line} {name}")
        for name, count in sorted(c_calls.items()):
            print(f"  {count / CALLS:5.1f}  (C) {name}")


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main())
