"""A stream that ends early is billed for all the output the provider produced that the
gateway saw: text, refusals, tool calls, reasoning and thinking, for every provider family.

Each fake streams a script and holds the stream open; the client reads up to the script's
last (visible) piece and leaves, so the gateway has seen every piece when it bills. The
bill must be at least the estimate of what was sent: four ASCII characters a token, any
other character a token.
"""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from tests.apigateway.providers.stream_events import estimate
from tests.apigateway.test_usage_records import record_of
from usage import pipeline
from usage.models import UsageRecord

END = "END-OF-SCRIPT"  # the script's last text: the client leaves when it has read it
PROMPT = [{"role": "user", "content": "hello there"}]  # two words: the fakes' prompt count
CJK = "日本語のテキストは一文字がほぼ一トークンです"


def stream(tenant, model: str, *, leave_at: str | None = END) -> tuple[httpx.Response, bytes]:
    """A streamed chat call read until a line holds `leave_at` (then the client leaves) or
    to its end; returns the response and the body sent."""
    body = orjson.dumps({"model": model, "messages": PROMPT, "stream": True})
    headers = {"authorization": f"Bearer {tenant.key}", "content-type": "application/json"}
    url = f"{tenant.url}/v1/chat/completions"
    with httpx.stream("POST", url, content=body, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if leave_at is not None and leave_at in line:
                break
    return response, body


def assert_cut_and_billed(response: httpx.Response, *, at_least: int) -> UsageRecord:
    record = record_of(response)
    assert record.streamed and record.status == 200
    assert record.completion_tokens >= at_least, (record.completion_tokens, at_least)
    assert record.cost_nanos > 0
    return record


# --- OpenAI family -------------------------------------------------------------------------

ARGUMENTS = orjson.dumps({"rows": [{"id": i, "note": "x" * 30} for i in range(60)]}).decode()


def argument_deltas(arguments: str, size: int = 20) -> list[dict]:
    """A tool call as OpenAI streams it: id and name first, then its arguments in pieces."""
    head = {"index": 0, "id": "call_1", "type": "function"}
    deltas = [{"tool_calls": [{**head, "function": {"name": "save_rows", "arguments": ""}}]}]
    for start in range(0, len(arguments), size):
        piece = {"index": 0, "function": {"arguments": arguments[start : start + size]}}
        deltas.append({"tool_calls": [piece]})
    return deltas


def text_deltas(field: str, texts: list[str], **beside) -> tuple[list, list[str]]:
    """Deltas carrying `texts` in `field`, then the closing marker; and all the text sent."""
    deltas = [{**beside, field: text} for text in texts]
    return [*deltas, {"content": END}], [*texts, END]


OPENAI_SCRIPTS = {
    # 2,840 characters of tool-call arguments (1 token if only content counted)
    "tool call arguments": (
        [*argument_deltas(ARGUMENTS[:2840]), {"content": END}],
        ["save_rows", ARGUMENTS[:2840], END],
    ),
    # DeepSeek's reasoning_content, then the answer
    "reasoning_content": text_deltas(
        "reasoning_content", [f"step {i} of my reasoning. " for i in range(200)]
    ),
    # OpenRouter's reasoning (content null beside it, as OpenRouter sends it)
    "reasoning": text_deltas("reasoning", [f"thought {i}; " for i in range(200)], content=None),
    "refusal": text_deltas("refusal", ["I can't help with that. "] * 100),
    "non-English text": text_deltas("content", [CJK] * 30),
}


@pytest.mark.parametrize("kind", sorted(OPENAI_SCRIPTS))
def test_an_openai_stream_cut_by_the_client_is_billed_for_all_its_output(tenant, fake_openai, kind):
    script, texts = OPENAI_SCRIPTS[kind]
    assert fake_openai.script is None
    fake_openai.script, fake_openai.hold = script, True
    response, body = stream(tenant, "gpt-4o-mini")
    record = assert_cut_and_billed(response, at_least=estimate(*texts))
    assert record.client_disconnected
    assert record.prompt_tokens == len(body) // 4  # no count from the provider yet


def test_an_openai_stream_that_fails_mid_way_is_billed_for_what_came_before(tenant, fake_openai):
    error = b'data: {"error": {"message": "the model crashed"}}\n\n'
    fake_openai.script = [*argument_deltas(ARGUMENTS, size=200), error]
    fake_openai.chunk_delay = 0.02  # the error in a read of its own, after the stream started
    response, _ = stream(tenant, "gpt-4o-mini", leave_at=None)
    record = assert_cut_and_billed(response, at_least=estimate("save_rows", ARGUMENTS))
    assert record.error_code and not record.client_disconnected


def test_a_completed_openai_stream_is_billed_from_the_providers_counts_alone(tenant, fake_openai):
    fake_openai.script = argument_deltas(ARGUMENTS)
    response, _ = stream(tenant, "gpt-4o-mini", leave_at=None)
    record = record_of(response)
    # The fake counts a token a delta: far fewer than the estimate, and what is billed.
    assert record.completion_tokens == len(fake_openai.script) < estimate(ARGUMENTS)
    assert record.prompt_tokens == 2 and not record.client_disconnected


# --- Anthropic -----------------------------------------------------------------------------


def text_block(pieces: list[str]) -> tuple[dict, list[dict]]:
    return {"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in pieces]


WORDS = [f" word{i}" for i in range(300)]
THINKING = [f"Let me consider case {i}. " for i in range(150)]
REDACTED = "RXhhbXBsZSBlbmNyeXB0ZWQgdGhpbmtpbmc" * 20
TOOL_INPUT = orjson.dumps({"rows": [{"id": i, "note": "y" * 20} for i in range(40)]}).decode()


def test_an_anthropic_stream_cut_after_300_deltas_is_billed_far_more_than_one_token(
    tenant, fake_anthropic
):
    fake_anthropic.script = [text_block([*WORDS, END])]
    fake_anthropic.hold = True
    response, _ = stream(tenant, "claude-3-5-sonnet")
    record = assert_cut_and_billed(response, at_least=estimate(*WORDS, END))
    assert record.completion_tokens > 300 and record.client_disconnected
    assert record.prompt_tokens == 2  # message_start's count


def anthropic_thinking_and_tool_script() -> tuple[list, list[str]]:
    thinking = (
        {"type": "thinking", "thinking": ""},
        [{"type": "thinking_delta", "thinking": t} for t in THINKING]
        + [{"type": "signature_delta", "signature": "c2lnbmF0dXJl"}],
    )
    redacted: tuple[dict[str, str], list[dict[str, str]]] = (
        {"type": "redacted_thinking", "data": REDACTED},
        [],
    )
    pieces = [TOOL_INPUT[i : i + 15] for i in range(0, len(TOOL_INPUT), 15)]
    tool = (
        {"type": "tool_use", "id": "toolu_1", "name": "save_rows", "input": {}},
        [{"type": "input_json_delta", "partial_json": p} for p in pieces],
    )
    script = [thinking, redacted, tool, text_block([END])]
    return script, [*THINKING, REDACTED, "save_rows", TOOL_INPUT, END]


def test_anthropic_thinking_redacted_thinking_and_tool_input_of_a_cut_stream_are_billed(
    tenant, fake_anthropic
):
    fake_anthropic.script, texts = anthropic_thinking_and_tool_script()
    fake_anthropic.hold = True
    response, _ = stream(tenant, "claude-3-5-sonnet")
    assert_cut_and_billed(response, at_least=estimate(*texts))


def test_an_anthropic_stream_the_provider_breaks_off_is_billed_for_what_came_before(
    tenant, fake_anthropic
):
    fake_anthropic.script = [text_block(WORDS)]
    # message_start, block start, ping, then the 300 deltas: broken off before the stop
    fake_anthropic.break_after = 3 + len(WORDS)
    response, _ = stream(tenant, "claude-3-5-sonnet", leave_at=None)
    record = assert_cut_and_billed(response, at_least=estimate(*WORDS))
    assert not record.client_disconnected


def test_a_completed_anthropic_stream_is_billed_from_the_providers_counts_alone(
    tenant, fake_anthropic
):
    fake_anthropic.script, texts = anthropic_thinking_and_tool_script()
    response, _ = stream(tenant, "claude-3-5-sonnet", leave_at=None)
    record = record_of(response)
    deltas = sum(len(deltas) for _, deltas in fake_anthropic.script)
    assert record.completion_tokens == deltas < estimate(*texts)  # message_delta's count
    assert record.prompt_tokens == 2


# --- Gemini --------------------------------------------------------------------------------

THOUGHTS = [f"Thinking about part {i} of the problem. " for i in range(100)]
GEMINI_ARGS = {"rows": [{"id": i, "note": "z" * 20} for i in range(40)]}


def gemini_script() -> tuple[list, list[str]]:
    call = {"functionCall": {"name": "save_rows", "args": GEMINI_ARGS}}
    script = [
        *([{"text": t, "thought": True}] for t in THOUGHTS),
        *([{"text": f" word{i}"}] for i in range(100)),
        [call],
        [{"text": END}],
    ]
    texts = [*THOUGHTS, *(f" word{i}" for i in range(100))]
    return script, [*texts, "save_rows", orjson.dumps(GEMINI_ARGS).decode(), END]


def test_a_gemini_stream_cut_by_the_client_is_billed_for_thoughts_text_and_calls(
    tenant, fake_gemini
):
    fake_gemini.script, texts = gemini_script()
    fake_gemini.hold = True
    response, _ = stream(tenant, "gemini-2.5-flash")
    record = assert_cut_and_billed(response, at_least=estimate(*texts))
    assert record.client_disconnected
    assert record.prompt_tokens == 2  # usageMetadata's promptTokenCount, sent with every event


def test_a_completed_gemini_stream_is_billed_from_the_providers_counts_alone(tenant, fake_gemini):
    fake_gemini.script, texts = gemini_script()
    response, _ = stream(tenant, "gemini-2.5-flash", leave_at=None)
    record = record_of(response)
    # candidatesTokenCount + thoughtsTokenCount: a token an event in the fake
    assert record.completion_tokens == len(fake_gemini.script) < estimate(*texts)
    assert record.prompt_tokens == 2


def test_a_client_that_leaves_while_the_model_only_thinks_pays_for_the_thinking(
    tenant, fake_gemini
):
    """Thoughts are not relayed, so the client has received nothing when it leaves: the
    provider bills the thinking all the same, and so does the gateway."""
    fake_gemini.script = [[{"text": t, "thought": True}] for t in THOUGHTS]
    fake_gemini.hold = True
    body = orjson.dumps({"model": "gemini-2.5-flash", "messages": PROMPT, "stream": True})
    headers = {"authorization": f"Bearer {tenant.key}", "content-type": "application/json"}
    with pytest.raises(httpx.ReadTimeout):  # nothing comes; the client gives up and leaves
        httpx.post(f"{tenant.url}/v1/chat/completions", content=body, headers=headers, timeout=1)
    deadline = time.monotonic() + 5
    while not (records := list(UsageRecord.objects.filter(model="gemini-2.5-flash"))):
        assert time.monotonic() < deadline, "the call was not recorded"
        pipeline.drain()
        time.sleep(0.05)
    [record] = records
    assert record.client_disconnected
    assert record.completion_tokens >= estimate(*THOUGHTS)
    assert record.cost_nanos > 0
