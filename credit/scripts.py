"""The credit core's Lua scripts, read from credit/lua/ once at import (process start).

Each script is sent with EVALSHA by its SHA-1 (EVAL with the source the first time a
connection runs it, which also loads it on the server). Scripts that check or count
requests and tokens start with the window functions of `windows.lua`; those that close
holds with `holds.lua`.

Two rules of Lua in Redis the scripts follow: an amount is negated as `0 - x` (Lua's `-x` of
0 is -0, which Redis refuses as an integer), and amounts stay below 2^53 nano-dollars
(about 9 million US dollars), the integers a Lua number holds exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).with_name("lua")
# The shared functions a script starts with.
PRELUDES = {
    "reserve": ("windows",),
    "count": ("windows",),
    "settle": ("holds",),
    "release": ("holds",),
    "reap": ("holds",),
}


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


def script(name: str, source: str) -> Script:
    return Script(name, source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


def _load(name: str) -> Script:
    parts = [*PRELUDES.get(name, ()), name]
    return script(name, "\n".join((LUA / f"{part}.lua").read_text() for part in parts))


RESERVE = _load("reserve")
COUNT = _load("count")
SETTLE = _load("settle")
RELEASE = _load("release")
REAP = _load("reap")
RENEW = _load("renew")
LOAD = _load("load")
SYNC_CREDITS = _load("sync_credits")
ACK = _load("ack")
CHARGE_LEDGER_ONLY = _load("charge_ledger_only")
MOVE_LEGACY_USAGE = _load("move_legacy_usage")
