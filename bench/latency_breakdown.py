# Run the gateway with per-phase timers (SIGUSR1 prints p50/mean per phase); see README Performance.
import os, sys, time, signal, collections, functools
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")
import nexeon.asgi as asgi
from apigateway import relay, http, quota as q, app, auth, catalog
stats = collections.defaultdict(list)
def wrap(mod, name, label):
    fn = getattr(mod, name)
    @functools.wraps(fn)
    async def timed(*a, **k):
        t = time.perf_counter()
        try:
            return await fn(*a, **k)
        finally:
            stats[label].append(time.perf_counter() - t)
    setattr(mod, name, timed)
wrap(relay, "reserve", "reserve")
wrap(relay, "settle", "settle")
wrap(http, "open_response", "open_response")  # streams: until the provider's headers
wrap(http, "fetch", "fetch")  # whole answers: the provider's headers and body
wrap(app, "authenticate", "auth")
wrap(relay, "send_json", "send_json")
wrap(app, "dispatch", "dispatch")
outer = asgi.application
async def application(scope, receive, send):
    t = time.perf_counter()
    await outer(scope, receive, send)
    stats["total"].append(time.perf_counter() - t)
def dump(*_):
    for k, v in stats.items():
        v = sorted(v); print(f"{k:14s} n={len(v)} p50={v[len(v)//2]*1e3:.3f}ms mean={sum(v)/len(v)*1e3:.3f}ms", flush=True)
    stats.clear()
signal.signal(signal.SIGUSR1, dump)
import uvicorn
uvicorn.run(application, host="127.0.0.1", port=8000, loop="uvloop", http="httptools", access_log=False, lifespan="off", log_level="warning")
