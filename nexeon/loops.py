"""The running event loop, without a system call each time it is asked for.

Python 3.11's `asyncio.get_running_loop()` (and everything in asyncio that calls it:
`current_task()`, `ensure_future()`, `Event.wait()`) compares the loop's process id with
`getpid()` on every call, to catch a loop inherited through fork. A gateway call asked
about ten times; after a wait on the provider, the first of those system calls costs about
16 µs here and each next one 1.6 µs (docs/benchmarks/cold-path-experiments.md in the git
history).

Python 3.12 keeps the running loop in the thread state and resets it in a forked child, so
its `get_running_loop()` makes no system call (checked with strace on 3.12 and 3.13): there
`running_loop` is asyncio's own. On 3.11 it is `remembered_running_loop()`, which remembers,
per thread, the loop it found; that loop is still the one running here as long as it runs
(one thread runs one loop at a time, and no code here runs a loop in one thread and then
in another). A forked child forgets it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

_seen = threading.local()

# Whether this Python's get_running_loop() checks getpid() on every call (3.11 does).
ASKS_GETPID = sys.version_info < (3, 12)


def remembered_running_loop() -> asyncio.AbstractEventLoop:
    """The loop running this code; RuntimeError outside one, as get_running_loop()."""
    loop = getattr(_seen, "loop", None)
    if loop is None or not loop.is_running():
        loop = _seen.loop = asyncio.get_running_loop()
    return loop


running_loop: Callable[[], asyncio.AbstractEventLoop] = (
    remembered_running_loop if ASKS_GETPID else asyncio.get_running_loop
)


def spawn(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task:
    """A task on the running loop (on 3.11, asyncio.ensure_future asks for it the slow way)."""
    return running_loop().create_task(coroutine)


def _forget() -> None:
    global _seen
    _seen = threading.local()


os.register_at_fork(after_in_child=_forget)
