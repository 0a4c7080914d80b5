"""Rate limits as HTTP: the x-ratelimit-* headers of an admitted call, the 429 of a refused
one (the windows themselves are the credit core's: credit/windows.py), and the token
estimate a call counts against a TPM limit until it settles (the prompt's text / 4, plus
max_tokens when the caller set it).
"""

from __future__ import annotations

import math
from typing import Any

from apigateway.errors import RATE_LIMITED, GatewayError
from credit.windows import RateInfo, RateLimited

IMAGE_PART_TOKENS = 85  # OpenAI's base cost of one image in a prompt


def rate_headers(info: RateInfo) -> list[tuple[bytes, bytes]]:
    """OpenAI's headers for the tightest limit that applies."""
    found: list[tuple[bytes, bytes]] = []
    reset = duration(info.reset_ms).encode()
    if info.request_limit:
        found += [
            (b"x-ratelimit-limit-requests", str(info.request_limit).encode()),
            (b"x-ratelimit-remaining-requests", str(info.requests_remaining).encode()),
            (b"x-ratelimit-reset-requests", reset),
        ]
    if info.token_limit:
        found += [
            (b"x-ratelimit-limit-tokens", str(info.token_limit).encode()),
            (b"x-ratelimit-remaining-tokens", str(info.tokens_remaining).encode()),
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


def refused(limited: RateLimited) -> GatewayError:
    """The 429 of a request the windows refused."""
    return rate_limited(
        subject=limited.subject,
        unit=limited.unit,
        limit=limited.limit,
        retry_after_ms=limited.wait_ms,
        requested=limited.requested,
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


def estimate_tokens(body: dict[str, Any], *, max_output_tokens: int | None) -> int:
    """What a call counts against a TPM limit until it settles with the real counts."""
    prompt = body.get("messages") if "messages" in body else body.get("input", body.get("prompt"))
    tools = body.get("tools")
    estimate = math.ceil((_text_tokens(prompt) + _text_tokens(tools)) / 4)
    if isinstance(body.get("input"), list) and body["input"] and isinstance(body["input"][0], int):
        estimate = len(body["input"])  # already tokens
    return estimate + (max_output_tokens or 0)
