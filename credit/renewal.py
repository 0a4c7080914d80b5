"""The holds this process has open, and their deadlines pushed back while it lives.

A hold's deadline is GATEWAY_HOLD_SECONDS ahead; every third of that, each event loop
renews the deadlines of the holds it still has open (one script call for all of them).
So a call may run as long as its provider streams, and the credit of a process that died
returns within GATEWAY_HOLD_SECONDS (plus the reaper's interval).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from django.conf import settings

from credit.records import CreditUnavailable, Hold
from nexeon.loops import running_loop, spawn

logger = logging.getLogger(__name__)
_open: dict[int, dict[str, Hold]] = {}  # event loop id -> its open holds by name
_tasks: dict[int, asyncio.Task[Any]] = {}


def deadline() -> float:
    seconds: float = settings.GATEWAY_HOLD_SECONDS
    return time.time() + seconds


def opened(hold: Hold) -> None:
    """Called on the event loop that made the hold."""
    loop_id = id(running_loop())
    holds = _open.get(loop_id)
    if holds is None:
        holds = _open[loop_id] = {}
    holds[hold.name] = hold
    task = _tasks.get(loop_id)
    if task is None or task.done():
        _tasks[loop_id] = spawn(_renew_forever(holds))


def closed(hold: Hold) -> None:
    for holds in _open.values():
        holds.pop(hold.name, None)


def open_holds() -> list[Hold]:
    return [hold for holds in _open.values() for hold in holds.values()]


async def _renew_forever(holds: dict[str, Hold]) -> None:
    from credit.stores import current

    while holds:
        await asyncio.sleep(settings.GATEWAY_HOLD_SECONDS / 3)
        if not holds:
            break
        try:
            await current().renew(list(holds.values()), deadline())
        except CreditUnavailable:
            logger.warning("holds not renewed: Redis unreachable")
        except Exception:
            logger.exception("holds not renewed")
