"""Google Gemini (Generative Language API v1beta), in OpenAI's shapes both ways.

Chat: `models/{model}:generateContent` (or `:streamGenerateContent?alt=sse`, where every
SSE event is a whole GenerateContentResponse). Embeddings: `:batchEmbedContents`. Gemini
has no tool-call ids, so a tool message's function name is looked up from the assistant
turn that made the call. Thought signatures cannot survive an OpenAI-shaped history, so
replayed function calls carry Google's documented `skip_thought_signature_validator`.

Reasoning (models the catalog marks `reasoning`): `generationConfig.thinkingConfig`, with
`thinkingLevel` for Gemini 3 (minimal and low → low, the others → high) and `thinkingBudget`
for Gemini 2.5 (the effort's share of the output cap, or the caller's reasoning max_tokens;
"none" → 0), and `includeThoughts` unless the caller excluded them. Thought parts come back
as `reasoning`/`reasoning_content`; thoughtsTokenCount is billed as output (part of
completion_tokens) and shown as `completion_tokens_details.reasoning_tokens`.
`cache_control` is not sent: Gemini caches prompts by itself. Structured output is native:
json_schema becomes `responseSchema` (an OpenAPI subset, see `clean_schema`).
"""

from __future__ import annotations

import base64
import math
import secrets
import struct
from typing import Any
from urllib.parse import urlsplit

import orjson

from apigateway import ids, media_urls
from apigateway.errors import API_ERROR, GatewayError, bad_request, upstream_error
from apigateway.providers import reasoning
from apigateway.providers.base import (
    JSON,
    Deployment,
    Provider,
    StreamTranslator,
    UpstreamRequest,
    Usage,
    file_data,
    load_object,
    now,
    object_field,
    output_cap,
    text_field,
    token_count,
    tool_calls_of,
    upstream_invalid,
)
from apigateway.redaction import redact
from apigateway.request_fields import refuse_untranslated
from apigateway.sse import SSEEvent

NAME = "gemini"
SKIP_SIGNATURE = "skip_thought_signature_validator"
FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
IMAGE_TYPES = {ext: f"image/{ext}" for ext in ("png", "jpeg", "gif", "webp", "heic", "heif")}
IMAGE_TYPES["jpg"] = "image/jpeg"
AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
# The OpenAPI subset Gemini's Schema accepts; everything else (additionalProperties,
# $schema, strict, examples, ...) is dropped, $ref is inlined, oneOf becomes anyOf.
SCHEMA_KEYS = frozenset(
    {"type", "format", "title", "description", "nullable", "enum", "items", "properties"}
    | {"required", "anyOf", "propertyOrdering", "default", "example", "pattern", "minimum"}
    | {"maximum", "minItems", "maxItems", "minLength", "maxLength", "minProperties"}
    | {"maxProperties"}
)
TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
THINKING_LEVELS = {"minimal": "low", "low": "low", "medium": "high", "high": "high"}
THINKING_LEVELS["xhigh"] = "high"


class GeminiProvider(Provider):
    name = NAME

    def _request(self, deployment: Deployment, action: str, body: JSON) -> UpstreamRequest:
        url = f"{deployment.base_url}/v1beta/models/{deployment.upstream_model}:{action}"
        headers = {"content-type": "application/json", "x-goog-api-key": deployment.api_key}
        headers.update(deployment.extra_headers)
        return UpstreamRequest("POST", url, headers, orjson.dumps(body))

    # --- chat ---
    def build_chat_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        refuse_untranslated(body, self.name)
        if not deployment.options.remote_media:
            media_urls.refuse_remote(body.get("messages") or [])
        system, contents = convert_messages(body.get("messages") or [])
        upstream: JSON = {"contents": contents}
        if system:
            upstream["systemInstruction"] = {"parts": system}
        if config := generation_config(body, deployment):
            upstream["generationConfig"] = config
        if body.get("tools"):
            upstream["tools"] = [{"functionDeclarations": function_declarations(body["tools"])}]
        if (choice := body.get("tool_choice")) is not None:
            upstream["toolConfig"] = {"functionCallingConfig": calling_config(choice)}
        action = "streamGenerateContent?alt=sse" if body.get("stream") else "generateContent"
        return self._request(deployment, action, upstream)

    def parse_chat_response(
        self, data: bytes, *, model: str, deployment: Deployment
    ) -> tuple[JSON, Usage]:
        payload = load(data)
        candidates = payload.get("candidates") or []
        if not isinstance(candidates, list):
            raise upstream_invalid(NAME)
        if not candidates:
            raise blocked(payload)
        choices = []
        for position, candidate in enumerate(candidates):
            texts, calls = read_parts(candidate)
            message: JSON = {
                "role": "assistant",
                "content": "".join(texts) if texts or not calls else None,
                "refusal": None,
            }
            if calls:
                message["tool_calls"] = calls
            if thoughts := "".join(thoughts_of(candidate)):
                reasoning.with_text(message, thoughts)
            reason = finish_reason(candidate.get("finishReason"), bool(calls))
            index = candidate_index(candidate, position)
            choices.append(
                {"index": index, "message": message, "logprobs": None, "finish_reason": reason}
            )
        usage = usage_from(payload.get("usageMetadata"))
        completion = {
            "id": ids.completion_id(),
            "object": "chat.completion",
            "created": now(),
            "model": model,
            "choices": choices,
            "usage": usage.as_openai(),
        }
        return completion, usage

    def stream_translator(
        self, *, model: str, include_usage: bool, deployment: Deployment
    ) -> StreamTranslator:
        return GeminiStreamTranslator(
            model=model, include_usage=include_usage, secret=deployment.api_key
        )

    # --- embeddings ---
    def build_embeddings_request(self, body: JSON, deployment: Deployment) -> UpstreamRequest:
        model = f"models/{deployment.upstream_model}"
        requests = []
        for text in embedding_inputs(body.get("input")):
            item: JSON = {"model": model, "content": {"parts": [{"text": text}]}}
            if body.get("dimensions"):
                item["outputDimensionality"] = body["dimensions"]
            requests.append(item)
        return self._request(deployment, "batchEmbedContents", {"requests": requests})

    def parse_embeddings_response(
        self, data: bytes, *, model: str, body: JSON
    ) -> tuple[JSON, Usage]:
        embeddings = load(data).get("embeddings")
        if not isinstance(embeddings, list):
            raise upstream_invalid(NAME)
        as_base64 = body.get("encoding_format") == "base64"
        items = []
        for index, embedding in enumerate(embeddings):
            values = embedding.get("values") if isinstance(embedding, dict) else None
            if not isinstance(values, list) or not all(map(is_number, values)):
                raise upstream_invalid(NAME)
            vector: Any = values
            if as_base64:
                try:
                    vector = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
                except OverflowError:  # beyond a float32
                    raise upstream_invalid(NAME) from None
            items.append({"object": "embedding", "index": index, "embedding": vector})
        # Gemini counts no tokens for embeddings: about four characters a token.
        characters = sum(len(text) for text in embedding_inputs(body.get("input")))
        usage = Usage(prompt_tokens=math.ceil(characters / 4))
        payload = {
            "object": "list",
            "data": items,
            "model": model,
            "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
        }
        return payload, usage

    # --- errors ---
    def map_error(self, status: int, data: bytes, secret: str = "") -> GatewayError:
        # Google answers a wrong API key with 400 INVALID_ARGUMENT (reason API_KEY_INVALID):
        # the operator's fault, never the caller's.
        if status == 400 and b"API_KEY_INVALID" in data:
            return upstream_error(502, "the gemini provider refused the gateway's credentials")
        return super().map_error(status, data, secret)


# --- requests ----------------------------------------------------------------------------


def convert_messages(messages: list[JSON]) -> tuple[list[JSON], list[JSON]]:
    """OpenAI messages → (systemInstruction parts, contents with same-role turns merged)."""
    system: list[JSON] = []
    contents: list[JSON] = []
    names: dict[str, str] = {}  # tool_call id → function name
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend({"text": text} for text in texts_of(message.get("content")))
            continue
        if role == "assistant":
            gemini_role, parts = "model", assistant_parts(message, names)
        elif role == "tool":
            gemini_role, parts = "user", [tool_response_part(message, names)]
        elif role == "user":
            gemini_role, parts = "user", user_parts(message.get("content"))
        else:
            raise bad_request(f"unsupported message role {role!r}", param="messages")
        if not parts:
            continue
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    return system, contents


def texts_of(content: Any) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content] if content else []
    texts = [p.get("text") or p.get("refusal") or "" for p in content if isinstance(p, dict)]
    return [text_field(text, "content[].text") for text in texts]


def user_parts(content: Any) -> list[JSON]:
    if content is None or isinstance(content, str):
        return [{"text": t} for t in texts_of(content)]
    parts: list[JSON] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": text_field(part.get("text"), "content[].text")})
        elif kind == "image_url":
            image = part.get("image_url")
            parts.append(image_part(image.get("url", "") if isinstance(image, dict) else image))
        elif kind == "input_audio":
            audio = object_field(part.get("input_audio"), "content[].input_audio")
            audio_format = text_field(audio.get("format"), "content[].input_audio.format")
            mime = AUDIO_TYPES.get(audio_format, "audio/wav")
            parts.append({"inlineData": {"mimeType": mime, "data": audio.get("data", "")}})
        elif kind == "file" and file_data(part):
            parts.append(image_part(file_data(part)))  # a data URL, e.g. a PDF
        else:
            raise bad_request(f"gemini does not take {kind!r} content parts", param="messages")
    return parts


def image_part(url: Any) -> JSON:
    url = text_field(url, "content[].image_url.url")
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if encoding != "base64" or not data:
            raise bad_request("data URLs must be base64-encoded", param="messages")
        return {"inlineData": {"mimeType": mime or "image/jpeg", "data": data}}
    media_urls.check(url)  # (a public https URL: it also parses)
    extension = urlsplit(url).path.rpartition(".")[2].lower()
    return {"fileData": {"mimeType": IMAGE_TYPES.get(extension, "image/jpeg"), "fileUri": url}}


def assistant_parts(message: JSON, names: dict[str, str]) -> list[JSON]:
    parts: list[JSON] = [{"text": t} for t in texts_of(message.get("content")) if t]
    for position, (call_id, name, args) in enumerate(tool_calls_of(message)):
        names[call_id] = name
        part: JSON = {"functionCall": {"name": name, "args": args}}
        if position == 0:
            part["thoughtSignature"] = SKIP_SIGNATURE
        parts.append(part)
    return parts


def tool_response_part(message: JSON, names: dict[str, str]) -> JSON:
    call_id = text_field(message.get("tool_call_id"), "tool_call_id")
    name = names.get(call_id) or message.get("name")
    if not name:
        raise bad_request("a tool message answers no earlier tool call", param="messages")
    text = "".join(texts_of(message.get("content")))
    try:
        content: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        content = text
    return {"functionResponse": {"name": name, "response": {"content": content}}}


def generation_config(body: JSON, deployment: Deployment) -> JSON:
    config: JSON = {}
    simple = {
        "temperature": "temperature",
        "top_p": "topP",
        "n": "candidateCount",
        "seed": "seed",
        "presence_penalty": "presencePenalty",
        "frequency_penalty": "frequencyPenalty",
    }
    for openai_name, gemini_name in simple.items():
        if body.get(openai_name) is not None:
            config[gemini_name] = body[openai_name]
    if (cap := output_cap(body, deployment)) is not None:
        config["maxOutputTokens"] = cap
    model = body.get("model") or ""
    if asked := reasoning.accepted(deployment.reasoning, body, model):
        config["thinkingConfig"] = thinking_config(asked, cap, deployment.upstream_model)
        if asked.on and not asked.exclude:
            config["thinkingConfig"]["includeThoughts"] = True
    if stop := body.get("stop"):
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format") or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        name = "response_format.json_schema"
        json_schema = object_field(response_format.get("json_schema"), name, "response_format")
        schema = json_schema.get("schema")
        if isinstance(schema, dict):
            config["responseSchema"] = clean_schema(schema)
    return config


def thinking_config(asked: reasoning.Reasoning, cap: int | None, model: str) -> JSON:
    """Gemini's thinking level (Gemini 3) or budget (2.5) for what the caller asked."""
    if not asked.on:
        return {"thinkingBudget": 0}
    if "gemini-3" in model:
        return {"thinkingLevel": THINKING_LEVELS[asked.effort_for(cap)]}
    if cap is None and not asked.max_tokens:
        return {"thinkingBudget": -1}  # (no cap to take a share of: the model decides)
    return {"thinkingBudget": asked.share_of(cap or 0)}


def clean_schema(schema: JSON, defs: JSON | None = None, depth: int = 0) -> JSON:
    """A JSON Schema as Gemini's Schema (an OpenAPI 3.0 subset), recursively. What is not
    an object schema (`true`, a malformed part) constrains nothing."""
    if not isinstance(schema, dict) or depth > 16:
        return {}
    if defs is None:
        defs = {}
        for name in ("definitions", "$defs"):
            if isinstance(found := schema.get(name), dict):
                defs.update(found)
    if isinstance(ref := schema.get("$ref"), str):
        target = defs.get(ref.rpartition("/")[2])
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        target = target if isinstance(target, dict) else {}
        return clean_schema({**target, **rest}, defs, depth + 1)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        merged = {**all_of[0], **{k: v for k, v in schema.items() if k != "allOf"}}
        return clean_schema(merged, defs, depth + 1)
    out: JSON = {}
    for key, value in schema.items():
        if key == "oneOf":
            key = "anyOf"
        if key == "const":
            key, value = "enum", [value]
        if key not in SCHEMA_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            value = {name: clean_schema(sub, defs, depth + 1) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            value = clean_schema(value, defs, depth + 1)
        elif key == "anyOf" and isinstance(value, list):
            if {"type": "null"} in value:
                out["nullable"] = True
            value = [clean_schema(s, defs, depth + 1) for s in value if s != {"type": "null"}]
            if len(value) == 1:
                out.update(value[0])
                continue
        elif key == "type" and isinstance(value, list):
            if "null" in value:
                out["nullable"] = True
            kinds = [kind for kind in value if kind != "null"]
            if len(kinds) != 1:
                out["anyOf"] = [{"type": str(kind).upper()} for kind in kinds]
                continue
            value = kinds[0]
        elif key == "items" or (
            key == "enum"
            and not (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            continue  # tuple-style items, non-string enums: no equivalent
        if key == "type" and isinstance(value, str):
            value = value.upper()
        out[key] = value
    return out


def function_declarations(tools: list[JSON]) -> list[JSON]:
    declarations = []
    for tool in tools:
        if tool.get("type") != "function":
            raise bad_request("gemini supports only function tools", param="tools")
        function = object_field(tool.get("function"), "tools[].function", "tools")
        declaration: JSON = {"name": function.get("name", "")}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        if isinstance(parameters, dict) and (parameters.get("properties") or {}):
            declaration["parameters"] = clean_schema(parameters)
        declarations.append(declaration)
    return declarations


def calling_config(choice: Any) -> JSON:
    if isinstance(choice, str) and choice in TOOL_MODES:
        return {"mode": TOOL_MODES[choice]}
    function = choice.get("function") if isinstance(choice, dict) else None
    name = object_field(function, "tool_choice.function", "tool_choice").get("name")
    if not name:
        raise bad_request("unsupported tool_choice", param="tool_choice")
    return {"mode": "ANY", "allowedFunctionNames": [name]}


def embedding_inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    raise bad_request("gemini embeddings take a string or a list of strings", param="input")


# --- answers -----------------------------------------------------------------------------


def load(data: bytes) -> JSON:
    return load_object(data, NAME)


def block_reason(payload: JSON) -> Any:
    feedback = payload.get("promptFeedback") or {}
    if not isinstance(feedback, dict):
        raise upstream_invalid(NAME)
    return feedback.get("blockReason")


def blocked(payload: JSON) -> GatewayError:
    reason = block_reason(payload)
    if not reason:
        raise upstream_invalid(NAME)
    return bad_request(
        f"the prompt was blocked by gemini's content filters ({redact(str(reason))})",
        code="content_filter",
    )


def read_parts(candidate: Any) -> tuple[list[str], list[JSON]]:
    """A candidate's answer text pieces (thoughts left out) and its calls as OpenAI tool calls."""
    if not isinstance(candidate, dict):
        raise upstream_invalid(NAME)
    content = candidate.get("content") or {}
    parts = (content.get("parts") or []) if isinstance(content, dict) else None
    if not isinstance(parts, list):
        raise upstream_invalid(NAME)
    texts: list[str] = []
    calls: list[JSON] = []
    for part in parts:
        if not isinstance(part, dict):
            raise upstream_invalid(NAME)
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        elif isinstance(call := part.get("functionCall"), dict):
            calls.append(
                {
                    "id": "call_" + secrets.token_hex(12),
                    "type": "function",
                    "function": {
                        "name": call.get("name", ""),
                        "arguments": orjson.dumps(call.get("args") or {}).decode(),
                    },
                }
            )
    return texts, calls


def thoughts_of(candidate: JSON) -> list[str]:
    """A candidate's thought text, which read_parts leaves out (and whose parts it checked)."""
    parts = (candidate.get("content") or {}).get("parts") or []
    return [
        part["text"] for part in parts if part.get("thought") and isinstance(part.get("text"), str)
    ]


def candidate_index(candidate: JSON, position: int) -> int:
    index = candidate.get("index", position)
    if not isinstance(index, int):
        raise upstream_invalid(NAME)
    return index


def finish_reason(reason: Any, tool_calls: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if isinstance(reason, str) and reason in FILTERED:
        return "content_filter"
    return "tool_calls" if tool_calls else "stop"


def usage_from(metadata: Any) -> Usage:
    """usageMetadata → Usage; thoughts are billed as output, so completion_tokens holds them."""
    meta = metadata if isinstance(metadata, dict) else {}
    thoughts = token_count(meta.get("thoughtsTokenCount"), NAME)
    return Usage(
        prompt_tokens=token_count(meta.get("promptTokenCount"), NAME),
        completion_tokens=token_count(meta.get("candidatesTokenCount"), NAME) + thoughts,
        cached_tokens=token_count(meta.get("cachedContentTokenCount"), NAME),
        reasoning_tokens=thoughts,
    )


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class GeminiStreamTranslator(StreamTranslator):
    """Each event is a whole GenerateContentResponse holding the next piece of the answer."""

    def __init__(self, *, model: str, include_usage: bool, secret: str = "") -> None:
        super().__init__(model=model, include_usage=include_usage)
        self.secret = secret  # the operator's key: never repeated in an error message
        self.started: set[int] = set()  # candidates whose role chunk went out
        self.calls: dict[int, int] = {}  # candidate → tool calls sent so far
        self.done: set[int] = set()  # candidates that sent a finishReason

    def delta(self, index: int, delta: JSON) -> JSON:
        if index not in self.started:
            self.started.add(index)
            delta = {"role": "assistant", "content": None, **delta}
        return self.chunk(delta, index=index)

    def feed(self, event: SSEEvent) -> list[JSON]:
        payload = load(event.data.encode())
        if isinstance(error := payload.get("error"), dict):
            message = error.get("message")
            message = redact(message, self.secret) if isinstance(message, str) else ""
            if not message:
                message = "the gemini provider failed mid-stream"
            raise GatewayError(502, message, type=API_ERROR)
        if counted := bool(payload.get("usageMetadata")):
            self.usage = usage_from(payload["usageMetadata"])
        candidates = payload.get("candidates") or []
        if not isinstance(candidates, list):
            raise upstream_invalid(NAME)
        if not candidates and block_reason(payload) and not self.started:
            raise blocked(payload)
        out: list[JSON] = []
        for position, candidate in enumerate(candidates):
            texts, calls = read_parts(candidate)
            index = candidate_index(candidate, position)
            for thought in thoughts_of(candidate):
                self.count(thought)  # output Google bills, relayed or not (`exclude`)
                if thought and self.show_reasoning:
                    out.append(self.delta(index, reasoning.with_text({}, thought)))
            if text := "".join(texts):
                self.count(text)
                out.append(self.delta(index, {"content": text}))
            for call in calls:
                self.count_function(call["function"])
                number = self.calls.get(index, 0)
                self.calls[index] = number + 1
                tool_call = {"index": number, **call}
                out.append(self.delta(index, {"tool_calls": [tool_call]}))
            if reason := candidate.get("finishReason"):
                if index not in self.started:
                    out.append(self.delta(index, {"content": ""}))
                out.append(self.chunk({}, finish_reason(reason, index in self.calls), index))
                self.done.add(index)
        self.finished = bool(self.done) and self.done >= self.started
        # The counts that came with the last finishReason are the answer's final ones.
        self.final_usage = self.final_usage or (self.finished and counted)
        return out
