# Variant runner for ab.py (issue 20's egress A/B): the gateway served as `make run` serves
# it, with providers called through httpx (httpx_upstream.py) when CLIENT=httpx, else
# through apigateway/upstream_client.py; run both through this script so that only the
# client differs.
import os, sys
sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")
import uvicorn
import nexeon.asgi as asgi
if os.environ.get("CLIENT") == "httpx":
    from apigateway import http
    from httpx_upstream import HttpxClient
    http.Client = HttpxClient
from apigateway.server import GatewayHttpProtocol
uvicorn.run(asgi.application, host="127.0.0.1", port=int(os.environ["PORT"]), loop="uvloop",
            http=GatewayHttpProtocol, access_log=False, lifespan="on", log_level="warning")
