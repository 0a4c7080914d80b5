# Experiment (not shipped): the response head held back and written with the first body chunk (one write).
import os, sys
sys.path.insert(0, os.getcwd())
from uvicorn.protocols.http import httptools_impl as hi
orig = hi.RequestResponseCycle.send
class _Hold:
    def __init__(self, real): self.real = real; self.head = None
    def write(self, data):
        if self.head is not None:
            data = self.head + data; self.head = None
        self.real.write(data)
    def __getattr__(self, name): return getattr(self.real, name)
async def send(self, message):
    if message["type"] == "http.response.start" and not self.response_started:
        real = self.transport
        hold = _Hold(real); hold.head = b""
        class Cap:
            def write(_s, d): hold.head += d
        self.transport = Cap()
        try:
            await orig(self, message)
        finally:
            self.transport = hold
        return
    t = self.transport
    await orig(self, message)
    if isinstance(t, _Hold) and t.head is not None and not message.get("more_body"):
        pass
hi.RequestResponseCycle.send = send
import uvicorn
uvicorn.run("nexeon.asgi:application", host="127.0.0.1", port=int(os.environ["PORT"]), loop="uvloop", http="httptools", access_log=False, lifespan="on", log_level="warning")
