# The gateway with reservation/settlement stubbed out (MODE=noredis) or as is (MODE=full), for the latency floor; see README Performance.
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")
import nexeon.asgi as asgi
from apigateway import relay, quota
class NoQuota:
    async def reserve(self, *, key, amount_nanos, **k): return quota.Reservation(key.organization_id, amount_nanos)
    async def settle(self, *a): return None
MODE = os.environ.get("MODE", "noredis")
if MODE == "noredis":
    relay.quota = lambda: NoQuota()
import uvicorn
uvicorn.run(asgi.application, host="127.0.0.1", port=8000, loop="uvloop", http="httptools", access_log=False, lifespan="off", log_level="warning")
