# Experiment (not shipped): every WARM_MS while calls wait, a 1-byte loopback TCP send (WARM_NET) and a canned parse (WARM_PY).
import os, sys, asyncio, socket
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")
import nexeon.asgi as asgi
import orjson
from apigateway import app as gapp, validation
MS = float(os.environ.get("WARM_MS", "1")); NET = os.environ.get("WARM_NET", "1") == "1"; PY = os.environ.get("WARM_PY", "1") == "1"
REQ = open(os.environ.get("WARM_BODY", "/tmp/ab-chat.json"), "rb").read()
RESP = b'{"id":"chatcmpl-x","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":30,"total_tokens":50}}'
async def warmer():
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
    a = socket.create_connection(l.getsockname()); b, _ = l.accept(); a.setblocking(False); b.setblocking(False)
    a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        await asyncio.sleep(MS / 1000)
        if not gapp._in_flight: continue
        if NET:
            a.send(b"x")
            try: b.recv(16)
            except BlockingIOError: pass
        if PY:
            p = validation.parse_json(REQ); validation.chat(p); orjson.dumps(orjson.loads(RESP))
started = False
inner = asgi.application
async def application(scope, receive, send):
    global started
    if not started and scope["type"] == "http":
        started = True; asyncio.ensure_future(warmer())
    await inner(scope, receive, send)
import uvicorn
uvicorn.run(application, host="127.0.0.1", port=int(os.environ["PORT"]), loop="uvloop", http="httptools", access_log=False, lifespan="on", log_level="warning")
