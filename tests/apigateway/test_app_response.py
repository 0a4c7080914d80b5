"""A failure after the response started never produces a second response."""

import asyncio

from apigateway.app import _Response
from apigateway.errors import GatewayError


def run(coro):
    return asyncio.run(coro)


def test_a_failure_before_anything_was_sent_is_a_json_error():
    sent = []

    async def send(message):
        sent.append(message)

    response = _Response(send)
    run(response.fail(GatewayError(503, "busy", type="api_error"), [(b"x-request-id", b"r")]))
    assert sent[0]["status"] == 503
    assert b'"busy"' in sent[1]["body"]


def test_a_failure_mid_stream_ends_the_stream_with_an_error_event():
    sent = []

    async def send(message):
        sent.append(message)

    async def scenario():
        response = _Response(send)
        await response.send({"type": "http.response.start", "status": 200, "headers": []})
        await response.send(
            {"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True}
        )
        await response.fail(GatewayError(500, "late", type="api_error"), [])

    run(scenario())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"] * 1 + [
        "http.response.body"
    ]
    assert sent[-1]["body"].startswith(b'data: {"error"') and sent[-1]["more_body"] is False


def test_a_failure_after_the_response_completed_sends_nothing():
    sent = []

    async def send(message):
        sent.append(message)

    async def scenario():
        response = _Response(send)
        await response.send({"type": "http.response.start", "status": 200, "headers": []})
        await response.send({"type": "http.response.body", "body": b"{}"})
        await response.fail(GatewayError(500, "late", type="api_error"), [])

    run(scenario())
    assert len(sent) == 2
