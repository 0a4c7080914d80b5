"""The running event loop, without a system call each time it is asked for.

Python 3.11's `asyncio.get_running_loop()` (and everything in asyncio that calls it:
`current_task()`, `ensure_future()`, `Event.wait()`) compares the loop's process id with
`getpid()` on every call, to catch a loop inherited through fork (3.12 keeps the loop in
the thread state instead). A gateway call asked about ten times; after a wait on the
provider, the first of those system calls costs about 16 µs here and each next one 1.6 µs
(docs/benchmarks/cold-path-experiments.md).

`running_loop()` remembers, per thread, the loop it found; it is still the running one as
long as it runs (one thread runs one loop at a time). A forked child forgets it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any

_seen = threading.local()


def running_loop() -> asyncio.AbstractEventLoop:
    """The loop running this code; RuntimeError outside one, as get_running_loop()."""
    loop = getattr(_seen, "loop", None)
    if loop is None or not loop.is_running():
        loop = _seen.loop = asyncio.get_running_loop()
    return loop


def spawn(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task:
    """A task on the running loop (asyncio.ensure_future asks for the loop the slow way)."""
    return running_loop().create_task(coroutine)


def _forget() -> None:
    global _seen
    _seen = threading.local()


os.register_at_fork(after_in_child=_forget)
