"""Requests and tokens per minute, per key and per organization, over a sliding window.

A window is 61 one-second buckets: a request at second s is admitted only if the requests
counted in seconds s-60 .. s leave room for it. Any 60-second interval [a, a+60) lies
inside the 61 buckets checked when its last request was admitted, so a key with RPM N
never gets more than N requests in any 60 seconds (the price: a request may wait up to one
second longer than an exact log would make it). Running totals make each check O(1). The
same rules run in Redis (lua/windows.lua, lua/reserve.lua) and here, in `LocalWindows`,
for the in-memory store; the two are checked against each other on generated schedules.

Tokens are counted when a call is admitted as an estimate, and corrected to the
provider's counts when it settles, in the bucket of the second the call started.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BUCKETS = 61  # seconds s-60 .. s


@dataclass(slots=True)
class RateInfo:
    """The tightest of the limits that apply to a call, for the x-ratelimit-* headers."""

    request_limit: int = 0  # 0: no RPM limit applies
    requests_remaining: int = 0
    token_limit: int = 0  # 0: no TPM limit applies
    tokens_remaining: int = 0
    reset_ms: int = 0  # until the window is back to its initial state
    second: int = 0  # the bucket the call was counted in (to correct its tokens later)
    tokens: int = 0  # the estimate counted


@dataclass(frozen=True, slots=True)
class RateLimited:
    """Refused: a limit of `subject` ("key" or "organization") on `unit` ("requests" or
    "tokens") would be passed; `wait_ms` until enough of the window has left."""

    wait_ms: int
    subject: str
    unit: str
    limit: int
    requested: int = 1


Limits = list[tuple[str, str, int | None, int | None]]  # (window, subject, rpm, tpm)


@dataclass(slots=True)
class _Window:
    buckets: dict[int, list[int]] = field(default_factory=dict)  # second -> [requests, tokens]
    requests: int = 0
    tokens: int = 0

    def advance(self, now_s: int) -> None:
        oldest = now_s - (BUCKETS - 1)
        for second in [s for s in self.buckets if s < oldest]:
            requests, tokens = self.buckets.pop(second)
            self.requests -= requests
            self.tokens -= tokens

    def wait_ms(self, index: int, excess: int, now: float) -> int:
        """Until `excess` requests (index 0) or tokens (1) have left the window."""
        freed = 0
        for second in sorted(self.buckets):
            freed += self.buckets[second][index]
            if freed >= excess:
                return math.ceil((second + BUCKETS - now) * 1000)
        return BUCKETS * 1000

    def add(self, now_s: int, requests: int, tokens: int) -> None:
        bucket = self.buckets.setdefault(now_s, [0, 0])
        bucket[0] += requests
        bucket[1] += tokens
        self.requests += requests
        self.tokens += tokens


class LocalWindows:
    """The windows in this process's memory (the in-memory store's)."""

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}

    def window(self, name: str, now_s: int) -> _Window:
        found = self._windows.get(name)
        if found is None:
            if len(self._windows) > 100_000:
                self._windows.clear()
            found = self._windows[name] = _Window()
        found.advance(now_s)
        return found

    def check(
        self, limits: Limits, tokens: int, now: float, requests: int = 1
    ) -> RateLimited | None:
        """The first limit `requests` more requests and `tokens` more tokens would pass."""
        now_s = int(now)
        for name, subject, rpm, tpm in limits:
            window = self.window(name, now_s)
            if rpm and window.requests + requests > rpm:
                wait = window.wait_ms(0, window.requests + requests - rpm, now)
                return RateLimited(wait, subject, "requests", rpm)
            if tpm and window.tokens + tokens > tpm:
                wait = window.wait_ms(1, window.tokens + tokens - tpm, now)
                return RateLimited(wait, subject, "tokens", tpm, tokens)
        return None

    def count(self, limits: Limits, now: float, requests: int = 1) -> RateInfo:
        """Count requests in every window with a limit; the tightest request limit left."""
        now_s = int(now)
        info = RateInfo(second=now_s, reset_ms=math.ceil((now_s + BUCKETS - now) * 1000))
        for name, _, rpm, tpm in limits:
            if not (rpm or tpm):
                continue
            window = self.window(name, now_s)
            left = (rpm or 0) - window.requests - requests
            window.add(now_s, requests, 0)
            if rpm and (not info.request_limit or left < info.requests_remaining):
                info.request_limit, info.requests_remaining = rpm, left
        return info

    def count_tokens(self, limits: Limits, info: RateInfo, tokens: int) -> None:
        """Count an admitted call's token estimate where a token limit applies; the tightest
        token limit left into `info`."""
        info.tokens = tokens
        for name, _, _, tpm in limits:
            if not tpm:
                continue
            window = self._windows[name]
            if tokens > 0:
                window.add(info.second, 0, tokens)
            if not info.token_limit or tpm - window.tokens < info.tokens_remaining:
                info.token_limit, info.tokens_remaining = tpm, max(tpm - window.tokens, 0)

    def count_refused(self, limits: Limits, now: float) -> None:
        """One request in every window with an RPM limit, checked against nothing."""
        for name, _, rpm, _ in limits:
            if rpm:
                self.window(name, int(now)).add(int(now), 1, 0)

    def correct(self, names: tuple[str, ...], second: int, tokens: int, requests: int = 0) -> None:
        """Replace a call's token estimate by its real count (or return a lease's unused
        requests), if its second still counts."""
        for name in names:
            window = self._windows.get(name)
            if window is not None and second in window.buckets:
                window.buckets[second][0] += requests
                window.buckets[second][1] += tokens
                window.requests += requests
                window.tokens += tokens
