"""Requests and tokens per minute, per key and per organization, over a sliding window.

A window is 61 one-second buckets: a request at second s is admitted only if the requests
counted in seconds s-60 .. s leave room for it. Any 60-second interval [a, a+60) lies
inside the 61 buckets checked when its last request was admitted, so a key with RPM N
never gets more than N requests in any 60 seconds (the price: a request may wait up to one
second longer than an exact log would make it). Running totals make each check O(1); the
same rules run in Redis (quota.RESERVE_SCRIPT) and, embedded, in `LocalWindows` here.

Tokens are counted when a call is admitted as an estimate (the prompt's text / 4, plus
max_tokens when the caller set it), and corrected to the provider's counts when it
settles, in the bucket of the second the call started.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from apigateway.errors import RATE_LIMITED, GatewayError

BUCKETS = 61  # seconds s-60 .. s
IMAGE_PART_TOKENS = 85  # OpenAI's base cost of one image in a prompt


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

    def headers(self) -> list[tuple[bytes, bytes]]:
        found: list[tuple[bytes, bytes]] = []
        reset = duration(self.reset_ms).encode()
        if self.request_limit:
            found += [
                (b"x-ratelimit-limit-requests", str(self.request_limit).encode()),
                (b"x-ratelimit-remaining-requests", str(self.requests_remaining).encode()),
                (b"x-ratelimit-reset-requests", reset),
            ]
        if self.token_limit:
            found += [
                (b"x-ratelimit-limit-tokens", str(self.token_limit).encode()),
                (b"x-ratelimit-remaining-tokens", str(self.tokens_remaining).encode()),
                (b"x-ratelimit-reset-tokens", reset),
            ]
        return found


def duration(ms: int) -> str:
    """OpenAI's x-ratelimit-reset-* format: "20ms", "1.5s", "6m0s"."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    if ms < 60_000:
        return f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(ms, 60_000)
    return f"{minutes}m{rest // 1000}s"


def rate_limited(
    *, subject: str, unit: str, limit: int, retry_after_ms: int, requested: int = 1
) -> GatewayError:
    """429 for `subject` ("key" or "organization") over its `unit` ("requests"/"tokens")."""
    short = "RPM" if unit == "requests" else "TPM"
    # Whole seconds, at most 60: the openai SDKs honour a Retry-After only up to 60 s (and
    # fall back to their own short backoff beyond it); the window frees by then, give or
    # take the bucket's fraction of a second.
    retry = min(60, max(1, math.ceil(retry_after_ms / 1000)))
    where = "this API key" if subject == "key" else "this API key's organization"
    if requested > limit:
        message = (
            f"Request too large for {where}: its limit is {limit} {unit} per minute ({short}) "
            f"and this request needs about {requested}. Lower max_tokens or shorten the "
            "prompt."
        )
    else:
        message = (
            f"Rate limit reached for {where} on {unit} per minute ({short}): limit {limit}. "
            f"Please try again in {retry}s."
        )
    headers = {
        "retry-after": str(retry),
        f"x-ratelimit-limit-{unit}": str(limit),
        f"x-ratelimit-remaining-{unit}": "0",
        f"x-ratelimit-reset-{unit}": duration(retry_after_ms),
    }
    return GatewayError(
        429, message, type=RATE_LIMITED, code="rate_limit_exceeded", headers=headers
    )


def _text_tokens(value: object) -> int:
    """Characters / 4 of the strings in a prompt; image parts at their base cost."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_tokens(item) for item in value)
    if isinstance(value, dict):
        if value.get("type") == "image_url":
            return IMAGE_PART_TOKENS * 4
        return sum(_text_tokens(item) for item in value.values())
    return 0


def estimate_tokens(body: dict, *, max_output_tokens: int | None) -> int:
    """What a call counts against a TPM limit until it settles with the real counts."""
    prompt = body.get("messages") if "messages" in body else body.get("input")
    tools = body.get("tools")
    estimate = math.ceil((_text_tokens(prompt) + _text_tokens(tools)) / 4)
    if isinstance(body.get("input"), list) and body["input"] and isinstance(body["input"][0], int):
        estimate = len(body["input"])  # already tokens
    return estimate + (max_output_tokens or 0)


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
    """The embedded (no Redis) limiter: the same rules, in this process only."""

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

    def admit(
        self, subjects: list[tuple[str, str, int | None, int | None]], tokens: int, now: float
    ) -> RateInfo:
        """subjects: (window name, "key"/"organization", rpm, tpm). Counts the request in
        every window, or raises the 429 of the first limit it would break."""
        now_s = int(now)
        windows = [
            (self.window(name, now_s), subject, rpm, tpm) for name, subject, rpm, tpm in subjects
        ]
        for window, subject, rpm, tpm in windows:
            if rpm and window.requests + 1 > rpm:
                wait = window.wait_ms(0, window.requests + 1 - rpm, now)
                raise rate_limited(subject=subject, unit="requests", limit=rpm, retry_after_ms=wait)
            if tpm and window.tokens + tokens > tpm:
                wait = window.wait_ms(1, window.tokens + tokens - tpm, now)
                raise rate_limited(
                    subject=subject, unit="tokens", limit=tpm, retry_after_ms=wait, requested=tokens
                )
        info = RateInfo(
            second=now_s, tokens=tokens, reset_ms=math.ceil((now_s + BUCKETS - now) * 1000)
        )
        for window, _, rpm, tpm in windows:
            window.add(now_s, 1, tokens if tpm else 0)
            if rpm and (not info.request_limit or rpm - window.requests < info.requests_remaining):
                info.request_limit, info.requests_remaining = rpm, rpm - window.requests
            if tpm and (not info.token_limit or tpm - window.tokens < info.tokens_remaining):
                info.token_limit, info.tokens_remaining = tpm, max(tpm - window.tokens, 0)
        return info

    def count(self, subjects: list[tuple[str, str, int | None, int | None]], now: float) -> None:
        """One request in every window with an RPM limit, checked against nothing."""
        for name, _, rpm, _ in subjects:
            if rpm:
                self.window(name, int(now)).add(int(now), 1, 0)

    def correct(self, names: list[str], second: int, delta: int) -> None:
        """Replace a call's token estimate by its real count, if its second still counts."""
        for name in names:
            window = self._windows.get(name)
            if window is not None and second in window.buckets:
                window.buckets[second][1] += delta
                window.tokens += delta
