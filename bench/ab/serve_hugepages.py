# Experiment (not shipped): the process memory backed by huge pages 6 s after start (see hugepages.py).
import os, sys, gc, threading
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")
import nexeon.asgi as asgi
import hp
WHICH = tuple(os.environ.get("HP_WHICH", "anon,text").split(","))
def later():
    hp.collapse(WHICH)
threading.Timer(6.0, later).start()
import uvicorn
uvicorn.run(asgi.application, host="127.0.0.1", port=int(os.environ["PORT"]), loop="uvloop", http="httptools", access_log=False, lifespan="on", log_level="warning")
