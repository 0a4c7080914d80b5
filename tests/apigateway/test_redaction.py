"""Provider error messages without secrets or internal addresses (apigateway.redaction)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apigateway.redaction import REDACTED, WITHHELD, redact

FAST = settings(max_examples=300, derandomize=True, database=None, deadline=None)
OPERATOR_KEY = "sk-proj-Abc123operatorKEY456def789"


@pytest.mark.parametrize(
    ("message", "gone"),
    [
        ("Incorrect API key provided: sk-proj-abc123DEF456ghi789.", "sk-proj-abc123DEF456ghi789"),
        ("invalid x-api-key sk-ant-api03-AbCdEf123456-xyz", "sk-ant-api03-AbCdEf123456-xyz"),
        ("bad key gsk_a1B2c3D4e5F6g7H8i9J0", "gsk_a1B2c3D4e5F6g7H8i9J0"),
        ("bad key xai-Z9y8X7w6V5u4T3s2R1q0", "xai-Z9y8X7w6V5u4T3s2R1q0"),
        ("API key AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q not valid", "AIzaSyA1b2C3d4E5f6"),
        ("header was Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "eyJhbGci"),
        ("request id 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b failed", "9f86d081884c7d659a2f"),
        ("token dGhpcyBpcyBhIHNlY3JldCB0b2tlbg== leaked", "dGhpcyBpcyBhIHNlY3JldCB0b2tlbg"),
        ("could not reach http://10.1.2.3:8000/v1/chat", "10.1.2.3"),
        ("upstream vllm.internal:8000 refused", "vllm.internal"),
        ("connect to 10.1.2.3:8000 failed", "10.1.2.3"),
        ("connect to 10.1.2.3 failed.", "10.1.2.3"),
        ("proxy at [fd00::12]:3128 failed", "fd00::12"),
        ("upstream fe80::1ff:fe23:4567:890a timed out.", "fe80::1ff"),
        ("mapped ::ffff:10.0.0.1 unreachable", "10.0.0.1"),
        ("node gpu-7.ml.svc.cluster.local is down", "gpu-7.ml.svc.cluster.local"),
        ("database db.corp unreachable", "db.corp"),
        ("printer.local: no route", "printer.local"),
        ("localhost:11434 refused", "localhost"),
        ("redis at cache:6379 down", "cache:6379"),
        ("fetch ftp://files.example/x failed", "files.example"),
    ],
)
def test_secrets_and_internal_addresses_are_redacted(message, gone):
    out = redact(message)
    assert gone not in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 128000 tokens.",
        "Invalid 'messages[1].content': string too long. Expected a string with maximum "
        "length 1048576, but got a string with length 2000000 instead.",
        "max_tokens: 100000 > 8192, which is the maximum allowed number of output tokens",
        "temperature: range: 0..1",
        "Please retry at 12:30:45 or use a 16:9 image.",
        "invalid_request_error_code",
        "Unsupported value: 'messages[0].role' does not support 'developer' with this model.",
    ],
)
def test_ordinary_provider_messages_are_kept_as_they_are(message):
    assert redact(message) == message


def test_the_operator_key_goes_whatever_it_looks_like():
    assert redact("your key gemini-upstream-test is wrong", "gemini-upstream-test") == (
        f"your key {REDACTED} is wrong"
    )
    assert redact(f"key={OPERATOR_KEY}!", OPERATOR_KEY) == f"key={REDACTED}!"


def test_a_key_that_overlaps_the_marker_withholds_the_whole_message():
    assert redact("x[redacted] and [redacted]", "d]") == WITHHELD


keys = st.text(min_size=1, max_size=60)
realistic_keys = st.from_regex(r"(sk-|sk-ant-|gsk_|xai-|AIza|)[A-Za-z0-9_\-]{8,60}", fullmatch=True)


@FAST
@given(st.text(max_size=200), keys, st.text(max_size=200))
def test_the_operator_key_never_survives(before, key, after):
    assert key not in redact(before + key + after, key)


@FAST
@given(st.lists(st.one_of(st.text(max_size=30), realistic_keys), max_size=6), realistic_keys)
def test_a_realistic_key_never_survives_and_the_message_is_never_withheld(pieces, key):
    message = key.join(pieces) + " " + key
    out = redact(message, key)
    assert key not in out
    assert out != WITHHELD


@pytest.mark.parametrize(
    "hostile",
    [
        "a." * 200_000,
        ":" * 400_000,
        "a" * 400_000,
        "1." * 200_000,
        "a:" * 200_000,
        "[" + ":" * 200_000,
        "sk-" * 100_000,
        "http" * 100_000,
        "a-" * 200_000 + ":",
    ],
)
def test_redacting_a_huge_hostile_message_stays_linear(hostile):
    started = time.perf_counter()
    redact(hostile, OPERATOR_KEY)
    assert time.perf_counter() - started < 2.0
