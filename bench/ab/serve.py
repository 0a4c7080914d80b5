# uvicorn on $PORT with $LOOP (default uvloop): a variant runner for ab.py.
import os, sys
sys.path.insert(0, os.getcwd())
import uvicorn
uvicorn.run("nexeon.asgi:application", host="127.0.0.1", port=int(os.environ["PORT"]), loop=os.environ.get("LOOP", "uvloop"), http="httptools", access_log=False, lifespan="on", log_level="warning")
