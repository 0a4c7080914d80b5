"""A fake Google Gemini (Generative Language API v1beta), speaking Gemini's wire format.

POST /v1beta/models/{model}:generateContent, :streamGenerateContent (?alt=sse: CRLF-framed
`data:` events, each a whole GenerateContentResponse) and :batchEmbedContents. The key goes
in `x-goog-api-key` (or the `key` query parameter); like Google, a missing key is 403
PERMISSION_DENIED and a wrong one 400 INVALID_ARGUMENT with reason API_KEY_INVALID.

`generationConfig.thinkingConfig` (thinkingBudget or thinkingLevel, not both) makes the model
think: "Thinking about: <last user text>", billed in thoughtsTokenCount and sent as a
`thought: true` part first when includeThoughts is set.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

import orjson

from tests.fakes.server import FakeProvider, RecordedRequest, Send
from tests.fakes.tokens import vector, words

PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
}
RESPONSE_ID = "fAkE-gEmInI-rEsPoNsE"


def google_error(code: int, status: str, message: str, reason: str | None = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
    return {"error": error}


def part_text(part: dict) -> str:
    if "text" in part:
        return str(part["text"])
    for key in ("functionCall", "functionResponse"):
        if key in part:
            return orjson.dumps(part[key]).decode()
    return ""


def content_words(content: dict) -> int:
    return sum(len(words(part_text(part))) for part in content.get("parts") or [])


class FakeGemini(FakeProvider):
    def __init__(self, api_key: str = "gemini-upstream-test") -> None:
        super().__init__()
        self.api_key = api_key

    async def handle(self, request: RecordedRequest, send: Send) -> None:
        key = (
            request.headers.get("x-goog-api-key") or (parse_qs(request.query).get("key") or [""])[0]
        )
        if not key:
            message = "Method doesn't allow unregistered callers. Please use an API key."
            error = google_error(403, "PERMISSION_DENIED", message)
            await self.respond_json(send, error, status=403)
            return
        if key != self.api_key:
            message = "API key not valid. Please pass a valid API key."
            error = google_error(400, "INVALID_ARGUMENT", message, "API_KEY_INVALID")
            await self.respond_json(send, error, status=400)
            return
        match = PATH.match(request.path)
        if request.method != "POST" or not match:
            error = google_error(404, "NOT_FOUND", f"{request.path} is not found.")
            await self.respond_json(send, error, status=404)
            return
        try:
            body = request.json()
        except orjson.JSONDecodeError:
            error = google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
            await self.respond_json(send, error, status=400)
            return
        model, method = match["model"], match["method"]
        if method in ("generateContent", "streamGenerateContent"):
            if problem := self.invalid_generate(body):
                await self.respond_json(send, google_error(400, "INVALID_ARGUMENT", problem), 400)
                return
            response = self.generate(body, model)
            if method == "generateContent":
                await self.respond_json(send, response)
            elif "alt=sse" in request.query:
                await self.stream(send, self.sse_events(response), request)
            else:  # without alt=sse Google streams one JSON array
                await self.respond_json(send, [response])
        elif method == "batchEmbedContents":
            await self.embed(body, model, send)
        else:
            error = google_error(404, "NOT_FOUND", f"Method {method} is not found.")
            await self.respond_json(send, error, status=404)

    def invalid_generate(self, body: dict) -> str | None:
        """What Google would reject with 400 INVALID_ARGUMENT, or None."""
        unknown = set(body) - REQUEST_FIELDS
        if unknown:
            return f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}".'
        contents = body.get("contents")
        if not contents:
            return "* GenerateContentRequest.contents: contents is not specified"
        thinking = (body.get("generationConfig") or {}).get("thinkingConfig")
        if thinking is not None:
            if set(thinking) - {"thinkingBudget", "thinkingLevel", "includeThoughts"}:
                return 'Invalid JSON payload received. Unknown name in "thinkingConfig".'
            if "thinkingBudget" in thinking and "thinkingLevel" in thinking:
                return "You can only set only one of thinking budget and thinking level."
            budget = thinking.get("thinkingBudget", -1)
            if not isinstance(budget, int) or budget < -1:
                return "thinking_budget must be -1 (dynamic) or a whole number of tokens"
            if thinking.get("thinkingLevel", "low") not in ("minimal", "low", "medium", "high"):
                return "thinking_level must be minimal, low, medium or high"
        for content in contents:
            if content.get("role") not in ("user", "model", "function", None):
                return f"Please use a valid role: user, model. Got {content.get('role')!r}."
            if not content.get("parts"):
                return "* GenerateContentRequest.contents.parts: contents.parts must not be empty."
        return None

    # --- generateContent ---
    def answer(self, body: dict) -> tuple[list[dict], str]:
        """The model's parts and finishReason."""
        last = body["contents"][-1]
        parts = last.get("parts") or []
        for part in parts:
            if "functionResponse" in part:
                response = part["functionResponse"].get("response") or {}
                said = response.get("content", response) if isinstance(response, dict) else response
                if not isinstance(said, str):
                    said = orjson.dumps(said).decode()
                return [{"text": f"The tool said: {said}"}], "STOP"
        text = " ".join(part["text"] for part in parts if "text" in part)
        declarations = [
            declaration
            for tool in body.get("tools") or []
            for declaration in tool.get("functionDeclarations") or []
        ]
        if declarations and "weather" in text:
            call = {"name": declarations[0]["name"], "args": {"city": "Paris"}}
            return [{"functionCall": call, "thoughtSignature": "ZmFrZS1zaWduYXR1cmU="}], "STOP"
        out = words(f"Echo: {text}")
        limit = (body.get("generationConfig") or {}).get("maxOutputTokens")
        if limit and len(out) > limit:
            return [{"text": " ".join(out[:limit])}], "MAX_TOKENS"
        return [{"text": " ".join(out)}], "STOP"

    def generate(self, body: dict, model: str) -> dict:
        parts, finish = self.answer(body)
        prompt = sum(content_words(c) for c in body["contents"])
        prompt += content_words(body.get("systemInstruction") or {})
        completion = content_words({"parts": parts}) or 1
        thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        thoughts = 0
        if thinking and thinking.get("thinkingBudget") != 0:
            said = " ".join(p.get("text", "") for p in body["contents"][-1].get("parts") or [])
            thought = f"Thinking about: {said}"
            thoughts = len(words(thought))
            if thinking.get("includeThoughts"):
                parts = [{"text": thought, "thought": True}, *parts]
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": completion,
            "totalTokenCount": prompt + completion + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return {
            "candidates": [
                {
                    "content": {"parts": parts, "role": "model"},
                    "finishReason": finish,
                    "index": 0,
                }
            ],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": RESPONSE_ID,
        }

    def sse_events(self, response: dict) -> list[bytes]:
        """The answer as Google streams it: a word or two per event; the last event carries
        finishReason and the full usageMetadata, earlier ones the prompt count only.

        A scripted stream (`script`) is a list of each event's parts, e.g.
        [{"text": "...", "thought": True}] or [{"functionCall": {"name": ..., "args": ...}}];
        its usage counts a token an event, thought parts as thoughtsTokenCount."""
        candidate = response["candidates"][0]
        usage = response["usageMetadata"]
        prompt_only = {
            "promptTokenCount": usage["promptTokenCount"],
            "totalTokenCount": usage["promptTokenCount"],
            "promptTokensDetails": usage["promptTokensDetails"],
        }
        if self.script is not None:
            part_lists = self.script
            scripted = [parts for parts in part_lists if not isinstance(parts, bytes)]
            thoughts = sum(any(part.get("thought") for part in parts) for parts in scripted)
            answer = len(scripted) - thoughts
            prompt = usage["promptTokenCount"]
            usage = {
                **prompt_only,
                "candidatesTokenCount": answer,
                "thoughtsTokenCount": thoughts,
                "totalTokenCount": prompt + answer + thoughts,
            }
        else:
            parts = candidate["content"]["parts"]
            thought = [[parts[0]]] if parts[0].get("thought") else []
            parts = parts[len(thought) :]
            if "text" in parts[0]:
                pieces = re.findall(r"\s*\S+(?:\s+\S+)?", parts[0]["text"]) or [""]
                part_lists = [*thought, *[[{"text": piece}] for piece in pieces]]
            else:
                part_lists = [*thought, parts]
        events = []
        for number, event_parts in enumerate(part_lists):
            if isinstance(event_parts, bytes):
                events.append(event_parts)
                continue
            event: dict[str, Any] = {"content": {"parts": event_parts, "role": "model"}}
            last = number == len(part_lists) - 1 and not self.hold
            if last:
                event["finishReason"] = candidate["finishReason"]
            event["index"] = 0
            data = {
                "candidates": [event],
                "usageMetadata": usage if last else prompt_only,
                "modelVersion": response["modelVersion"],
                "responseId": response["responseId"],
            }
            events.append(b"data: " + orjson.dumps(data) + b"\r\n\r\n")
        return events

    # --- batchEmbedContents ---
    async def embed(self, body: dict, model: str, send: Send) -> None:
        embeddings = []
        for item in body.get("requests") or []:
            if item.get("model") != f"models/{model}":
                message = (
                    f"Model {item.get('model')!r} of an embedding request does not match "
                    f"models/{model}."
                )
                await self.respond_json(send, google_error(400, "INVALID_ARGUMENT", message), 400)
                return
            text = " ".join(p.get("text", "") for p in item.get("content", {}).get("parts", []))
            values = vector(text, item.get("outputDimensionality") or 768)
            embeddings.append({"values": values})
        await self.respond_json(send, {"embeddings": embeddings})
