"""The gateway with marks at each step of a call (PORT, default 8101); SIGUSR2 prints, for
the last 140 calls, the median time of each mark after the request's bytes arrived.
Run it from the project directory with the bench environment (see README.md here)."""
import os, sys, signal, time, functools, statistics, inspect
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")
import nexeon.asgi as asgi
from apigateway import app, relay, http, quota, resp, upstream_client, validation, auth, catalog
from apigateway.providers import openai as prov_openai
from uvicorn.protocols.http import httptools_impl as hi
now = time.perf_counter_ns
calls = []; cur = None
def mark(name):
    if cur is not None: cur.append((name, now()))
def wrap(owner, attr, name=None):
    fn = getattr(owner, attr); name = name or attr
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def w(*a, **k):
            mark(name + ">")
            try: return await fn(*a, **k)
            finally: mark(name + "<")
    else:
        @functools.wraps(fn)
        def w(*a, **k):
            mark(name + ">")
            try: return fn(*a, **k)
            finally: mark(name + "<")
    setattr(owner, attr, w)
orig_dr = hi.HttpToolsProtocol.data_received
def dr(self, data):
    global cur
    if b"POST" in data[:8]:
        cur = [("req", now())]; calls.append(cur)
    return orig_dr(self, data)
hi.HttpToolsProtocol.data_received = dr
wrap(app, "authenticate"); wrap(app, "read_body"); wrap(validation, "parse_json"); wrap(validation, "chat")
wrap(app, "dispatch"); wrap(relay, "chat"); wrap(relay, "upstream_requests"); wrap(relay, "chat_token_estimate")
wrap(quota, "reserve"); wrap(resp._Connection, "flush", "rflush"); wrap(resp._Connection, "data_received", "rdata")
wrap(upstream_client.Client, "request", "upreq"); wrap(upstream_client._Connection, "data_received", "updata")
wrap(http, "fetch"); wrap(relay, "_answer"); wrap(relay, "settle"); wrap(hi.RequestResponseCycle, "send", "uvsend")
wrap(prov_openai.OpenAIAdapter if hasattr(prov_openai, "OpenAIAdapter") else prov_openai, "parse_chat_response") if hasattr(getattr(prov_openai, "OpenAIAdapter", prov_openai), "parse_chat_response") else None
wrap(relay, "usage_cost")
wrap(app, "application", "task")
from apigateway import server
wrap(server.GatewayExchange, "send", "uvsend"); wrap(server.GatewayExchange, "respond", "uvsend")
def after_answer(cs):
    """What the process still does after a call's answer is written, against when the
    client's next request arrives (closed loop at c=1: the next request follows the answer)."""
    busy, idle = [], []
    for c, nxt in zip(cs, cs[1:]):
        sent = [t for n, t in c if n == "uvsend<"]
        end = [t for n, t in c if n == "task<"]
        if sent and end:
            busy.append((end[-1] - sent[-1]) / 1e3); idle.append((nxt[0][1] - sent[-1]) / 1e3)
    if busy:
        print(f"after the answer: task ends +{statistics.median(busy):.0f} us, next request's bytes +{statistics.median(idle):.0f} us"
              f" (task still running then in {sum(b > i for b, i in zip(busy, idle))} of {len(busy)})", flush=True)
def dump(*_):
    cs = calls[-140:]
    after_answer(cs)
    offs = {}
    for c in cs:
        t0 = c[0][1]; seen = {}
        for n, t in c[1:]:
            k = n
            while k in seen: k = k + "'"
            seen[k] = t
        for k, t in seen.items(): offs.setdefault(k, []).append((t - t0) / 1e3)
    rows = sorted(((statistics.median(v), k, len(v)) for k, v in offs.items() if len(v) > len(cs) * 0.8))
    for m, k, n in rows: print(f"{m:9.0f} us  {k:24s} n={n}", flush=True)
    calls.clear()
signal.signal(signal.SIGUSR2, dump)
import uvicorn
uvicorn.run(asgi.application, host="127.0.0.1", port=int(os.environ.get("PORT", "8101")), loop="uvloop", http=os.environ.get("HTTP", "httptools"), access_log=False, lifespan="on", log_level="warning")
