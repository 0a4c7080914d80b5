"""The sliding-window limiter's rules, on the in-process windows (credit/windows.py), and
their 429s and headers as the gateway sends them. The Redis script is checked against the
same rules in test_store_equivalence.py."""

from __future__ import annotations

import pytest

from apigateway.errors import GatewayError
from apigateway.ratelimit import duration, estimate_tokens, rate_headers, refused
from credit.windows import Limits, LocalWindows, RateInfo

T0 = 1_800_000_000.0


def admit_all(windows: LocalWindows, limits: Limits, tokens: int, at: float) -> RateInfo:
    """What a reservation does with the windows: check, count, count the tokens; a refusal
    as the gateway's 429."""
    limited = windows.check(limits, tokens, at)
    if limited is not None:
        raise refused(limited)
    info = windows.count(limits, at)
    windows.count_tokens(limits, info, tokens)
    return info


def admit(windows: LocalWindows, at: float, rpm=None, tpm=None, tokens=0) -> RateInfo:
    return admit_all(windows, [("w", "key", rpm, tpm)], tokens, at)


def refusal(windows: LocalWindows, at: float, **limits) -> GatewayError:
    with pytest.raises(GatewayError) as refused:
        admit(windows, at, **limits)
    assert refused.value.status == 429
    return refused.value


def test_no_more_than_n_requests_in_any_60_seconds():
    windows = LocalWindows()
    admitted = []
    at = T0
    while at < T0 + 300:  # one attempt every 0.25 s for five minutes, RPM 7
        try:
            admit(windows, at, rpm=7)
            admitted.append(at)
        except GatewayError:
            pass
        at += 0.25
    for start in admitted:  # every window that starts at an admitted request
        assert sum(1 for t in admitted if start <= t < start + 60) <= 7
    assert len(admitted) >= 7 * 4  # and the limit is not simply stuck shut


def test_retry_after_is_when_the_oldest_request_leaves_the_window():
    windows = LocalWindows()
    admit(windows, T0 + 0.5, rpm=2)
    admit(windows, T0 + 10.2, rpm=2)
    refused = refusal(windows, T0 + 20.7, rpm=2)
    # The first request's second (T0) stops counting 61 s after it began: T0 + 61.
    assert refused.headers["retry-after"] == "41"  # ceil(61 - 20.7)
    assert refused.headers["x-ratelimit-reset-requests"] == "40.3s"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert "try again in 41s" in refused.message
    admit(windows, T0 + 61.0, rpm=2)  # and then it is admitted


def test_tokens_are_estimated_then_corrected_to_the_real_count():
    windows = LocalWindows()
    first = admit(windows, T0, tpm=1000, tokens=600)
    assert (first.token_limit, first.tokens_remaining) == (1000, 400)
    refusal(windows, T0 + 1, tpm=1000, tokens=600)  # 600 + 600 > 1000
    windows.correct(("w",), first.second, 100 - 600)  # it used 100 tokens in the end
    second = admit(windows, T0 + 2, tpm=1000, tokens=600)
    assert second.tokens_remaining == 300


def test_retry_after_never_exceeds_what_the_sdks_honour():
    windows = LocalWindows()
    admit(windows, T0 + 0.6, rpm=1)
    refused = refusal(windows, T0 + 0.7, rpm=1)  # the window frees at T0 + 61: 60.3 s
    assert refused.headers["retry-after"] == "60"
    assert refused.headers["x-ratelimit-reset-requests"] == "1m0s"


def test_a_request_larger_than_the_limit_says_so():
    refused = refusal(LocalWindows(), T0, tpm=1000, tokens=5000)
    assert "Request too large" in refused.message and "5000" in refused.message
    assert refused.headers["x-ratelimit-limit-tokens"] == "1000"


def test_the_tightest_limit_is_reported():
    windows = LocalWindows()
    subjects = [("k", "key", 10, None), ("o", "organization", 3, None)]
    info = admit_all(windows, subjects, 0, T0)
    assert (info.request_limit, info.requests_remaining) == (3, 2)
    admit_all(windows, subjects, 0, T0)
    admit_all(windows, subjects, 0, T0)
    with pytest.raises(GatewayError) as refused:
        admit_all(windows, subjects, 0, T0)
    assert "organization" in refused.value.message


def test_headers_are_openais():
    info = RateInfo(
        request_limit=60, requests_remaining=59, token_limit=0, reset_ms=60_500, second=1
    )
    assert dict(rate_headers(info)) == {
        b"x-ratelimit-limit-requests": b"60",
        b"x-ratelimit-remaining-requests": b"59",
        b"x-ratelimit-reset-requests": b"1m0s",
    }
    assert [duration(ms) for ms in (20, 1500, 6_000, 360_000)] == ["20ms", "1.5s", "6s", "6m0s"]


def test_token_estimates():
    body = {"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 50}
    assert estimate_tokens(body, max_output_tokens=50) == 101 + 50  # (400 + len("user")) / 4
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 10**6}}
    with_image = {"messages": [{"role": "user", "content": [image]}]}
    assert estimate_tokens(with_image, max_output_tokens=None) < 200  # not the base64
    assert estimate_tokens({"input": [1, 2, 3]}, max_output_tokens=None) == 3
