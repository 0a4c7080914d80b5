"""A variant runner for ab.py: the gateway under uvicorn on $PORT with $LOOP (default
uvloop) and $HTTP (default httptools; a name uvicorn knows or a protocol class
"module:Class")."""

import os
import sys

sys.path.insert(0, os.getcwd())
import uvicorn

uvicorn.run(
    "nexeon.asgi:application",
    host="127.0.0.1",
    port=int(os.environ["PORT"]),
    loop=os.environ.get("LOOP", "uvloop"),
    http=os.environ.get("HTTP", "httptools"),
    access_log=False,
    lifespan="on",
    log_level="warning",
)
