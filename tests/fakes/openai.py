"""A fake OpenAI (and OpenAI-compatible) provider, speaking OpenAI's wire format.

A scripted stream (`script`) is a list of chunk deltas, e.g. {"content": "..."},
{"reasoning_content": "..."} or {"tool_calls": [...]}; its usage counts a token a delta.
The Responses API (POST /v1/responses) is in tests/fakes/openai_responses.py.

Reasoning: a `reasoning_effort` other than "none" bills REASONING_TOKENS[effort] hidden
reasoning tokens (completion_tokens_details.reasoning_tokens), as OpenAI's reasoning models
do; DeepSeek's `thinking: {"type": "enabled"}` (or a model named *reasoner) thinks aloud, in
`reasoning_content`, as DeepSeek does.
"""

from __future__ import annotations

import base64
import struct
import time

import orjson

from tests.fakes.openai_responses import ResponsesEndpoint
from tests.fakes.server import FakeProvider, RecordedRequest, Send
from tests.fakes.tokens import vector, words

REASONING_TOKENS = {"minimal": 8, "low": 16, "medium": 64, "high": 256, "xhigh": 512}


def thinks_aloud(body: dict) -> bool:
    thinking = (body.get("thinking") or {}).get("type")
    return thinking == "enabled" or ("reasoner" in body["model"] and thinking != "disabled")


def last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") in ("user", "tool"):
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content or [] if p.get("type") == "text")
    return ""


class FakeOpenAI(ResponsesEndpoint, FakeProvider):
    def __init__(self, api_key: str = "sk-upstream-test") -> None:
        super().__init__()
        self.api_key = api_key

    async def handle(self, request: RecordedRequest, send: Send) -> None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            await self.respond_json(
                send,
                {
                    "error": {
                        "message": "Incorrect API key provided.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
            return
        path = request.path.removeprefix("/v1")
        body = request.json() if request.body else {}
        if path == "/chat/completions":
            await self.chat(body, send, request)
        elif path == "/embeddings":
            await self.embeddings(body, send)
        elif path == "/images/generations":
            await self.images(body, send)
        elif path == "/completions":
            await self.completions(body, send, request)
        elif path == "/moderations":
            await self.moderations(body, send)
        elif path == "/responses":
            await self.responses(body, send, request)
        else:
            await self.respond_json(send, {"error": {"message": "not found"}}, status=404)

    def answer(self, body: dict) -> tuple[str | None, list[dict] | None, str]:
        messages = body["messages"]
        text = last_user_text(messages)
        if messages[-1].get("role") == "tool":
            return f"The tool said: {text}", None, "stop"
        if body.get("tools") and "weather" in text:
            name = body["tools"][0]["function"]["name"]
            call = {
                "id": "call_fake_1",
                "type": "function",
                "function": {"name": name, "arguments": '{"city": "Paris"}'},
            }
            return None, [call], "tool_calls"
        out = words(f"Echo: {text}")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit and len(out) > limit:
            return " ".join(out[:limit]), None, "length"
        return " ".join(out), None, "stop"

    def usage(self, body: dict, content: str | None) -> dict:
        prompt = sum(len(words(str(m.get("content") or ""))) for m in body["messages"])
        completion = len(words(content or "")) or 1
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        prompt = self.billed("prompt", prompt, cap)
        completion = self.billed("completion", completion, cap)
        reasoning = REASONING_TOKENS.get(body.get("reasoning_effort") or "", 0)
        if thinks_aloud(body):
            reasoning = len(words(self.thought(body)))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion + reasoning,
            "total_tokens": prompt + completion + reasoning,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        return usage

    def thought(self, body: dict) -> str:
        return f"Thinking about: {last_user_text(body['messages'])}"

    async def chat(self, body: dict, send: Send, request: RecordedRequest) -> None:
        content, tool_calls, finish = self.answer(body)
        base = {"id": "chatcmpl-fake123", "created": int(time.time()), "model": body["model"]}
        usage = self.usage(body, content)
        if not body.get("stream"):
            message = {"role": "assistant", "content": content, "refusal": None}
            if thinks_aloud(body):
                message["reasoning_content"] = self.thought(body)
            if tool_calls:
                message["tool_calls"] = tool_calls  # type: ignore[assignment]
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            payload = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            await self.respond_json(send, payload)
            return
        include_usage = (body.get("stream_options") or {}).get("include_usage")

        def chunk(delta: dict, finish_reason=None) -> bytes:
            data = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                data["usage"] = None
            return b"data: " + orjson.dumps(data) + b"\n\n"

        events = [chunk({"role": "assistant", "content": ""})]
        if thinks_aloud(body) and self.script is None:
            events += [chunk({"reasoning_content": w + " "}) for w in words(self.thought(body))]
        if self.script is not None:
            # Scripted deltas, one token each (about what a real provider's delta is).
            events += [p if isinstance(p, bytes) else chunk(p) for p in self.script]
            calls = any(isinstance(p, dict) and "tool_calls" in p for p in self.script)
            finish = "tool_calls" if calls else "stop"
            usage = {**usage, "completion_tokens": len(self.script)}
            usage["total_tokens"] = usage["prompt_tokens"] + len(self.script)
        elif tool_calls:
            call = tool_calls[0]
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {"index": 0, "function": {"arguments": call["function"]["arguments"]}}
                        ]
                    }
                )
            )
        else:
            for index, word in enumerate(words(content or "")):
                events.append(chunk({"content": word if index == 0 else " " + word}))
        if not self.hold:
            events.append(chunk({}, finish))
            if include_usage:
                usage_chunk = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": usage,
                }
                events.append(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
            events.append(b"data: [DONE]\n\n")
        await self.stream(send, events, request)

    async def embeddings(self, body: dict, send: Send) -> None:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = body.get("dimensions") or 1536
        data = []
        for index, item in enumerate(inputs):
            values = vector(str(item), dimensions)
            if body.get("encoding_format") == "base64":
                packed = struct.pack(f"<{dimensions}f", *values)
                embedding = base64.b64encode(packed).decode()
            else:
                embedding = values  # type: ignore[assignment]
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(words(str(i))) for i in inputs)
        payload = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        await self.respond_json(send, payload)

    async def images(self, body: dict, send: Send) -> None:
        n = body.get("n") or 1
        if body.get("response_format") == "b64_json":
            items = [{"b64_json": base64.b64encode(b"\x89PNG fake").decode()} for _ in range(n)]
        else:
            items = [{"url": f"https://images.example/fake-{i}.png"} for i in range(n)]
        for item in items:
            item["revised_prompt"] = body["prompt"]
        await self.respond_json(send, {"created": int(time.time()), "data": items})

    async def completions(self, body: dict, send: Send, request: RecordedRequest) -> None:
        """The legacy completions API: each prompt's echo, `n` times, cut at `max_tokens`
        (OpenAI's default: 16); a token a word."""
        prompt = body["prompt"]
        if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
            prompts = [prompt]
        else:
            prompts = prompt
        limit = body.get("max_tokens") or 16
        n = body.get("n") or 1
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for number, text in enumerate(prompts):
            text = " ".join(map(str, text)) if isinstance(text, list) else text
            prompt_tokens += len(words(text))
            out = words(f"Echo: {text}")
            finish = "length" if len(out) > limit else "stop"
            out = out[:limit]
            answer = (text if body.get("echo") else "") + " " + " ".join(out)
            for copy in range(n):
                completion_tokens += len(out)
                choices.append(
                    {
                        "text": answer,
                        "index": number * n + copy,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                )
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base = {"id": "cmpl-fake123", "object": "text_completion", "created": int(time.time())}
        base["model"] = body["model"]
        if not body.get("stream"):
            await self.respond_json(send, {**base, "choices": choices, "usage": usage})
            return
        include_usage = (body.get("stream_options") or {}).get("include_usage")

        def chunk(choice: dict) -> bytes:
            data = {**base, "choices": [choice]}
            if include_usage:
                data["usage"] = None
            return b"data: " + orjson.dumps(data) + b"\n\n"

        events = []
        for choice in choices:
            for index, word in enumerate(words(choice["text"])):  # type: ignore[arg-type]
                piece = {"text": word if index == 0 else " " + word, "index": choice["index"]}
                events.append(chunk({**piece, "logprobs": None, "finish_reason": None}))
            events.append(chunk({**choice, "text": ""}))
        if include_usage:
            closing = {**base, "choices": [], "usage": usage}
            events.append(b"data: " + orjson.dumps(closing) + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        await self.stream(send, events, request)

    async def moderations(self, body: dict, send: Send) -> None:
        """OpenAI's moderation answer: one result per input (a text, or the whole
        multimodal array); anything saying "kill" is flagged as violence."""
        given = body["input"]
        if isinstance(given, str):
            items = [given]
        elif given and isinstance(given[0], dict):
            items = [" ".join(p.get("text", "") for p in given if p.get("type") == "text")]
        else:
            items = given
        names = ["harassment", "harassment/threatening", "hate", "hate/threatening"]
        names += ["illicit", "illicit/violent", "self-harm", "self-harm/instructions"]
        names += ["self-harm/intent", "sexual", "sexual/minors", "violence", "violence/graphic"]
        results = []
        for text in items:
            violent = "kill" in text
            categories = {name: violent and name == "violence" for name in names}
            scores = {name: 0.9 if categories[name] else 0.0001 for name in names}
            results.append(
                {
                    "flagged": violent,
                    "categories": categories,
                    "category_scores": scores,
                    "category_applied_input_types": {name: ["text"] for name in names},
                }
            )
        model = body.get("model") or "omni-moderation-latest"
        await self.respond_json(send, {"id": "modr-fake123", "model": model, "results": results})
