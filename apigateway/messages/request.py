"""A Messages API request: checked before it costs anything, and read as the chat body the
relay sizes, reserves for and hands the adapters of the other families. Pure.

Only the fields Anthropic takes are taken (any other is a 400, as Anthropic answers one),
and of those only what the catalog's token prices cover: server tools (web search, web
fetch, code execution), MCP servers, containers, fast mode and a chosen inference region
bill beyond them and are refused. Blocks Claude alone reads (a document or image by URL
or file id, Anthropic-defined client tools) keep the request from other families: the
chat body notes why (`Translation.problems`), and a deployment of another family refuses
it with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from apigateway import media_urls, validation
from apigateway.errors import GatewayError, bad_request

JSON = dict[str, Any]

TAKEN = frozenset(
    {"model", "messages", "max_tokens", "system", "stream", "metadata", "stop_sequences"}
    | {"temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "cache_control"}
    | {"output_config", "service_tier", "speed", "context_management"}
)
# count_tokens reads the prompt only.
COUNT_TAKEN = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "cache_control"}
    | {"output_config", "context_management"}
)
UNPRICED = {
    "container": "containers belong to code execution, which is billed beyond token prices",
    "mcp_servers": "MCP servers are not available through the gateway",
    "inference_geo": "calls run in the provider's default region, the one their price is for",
    "workspace_id": "the gateway's own provider account serves the call",
    "user_profile_id": "the gateway's own provider account serves the call",
}
BLOCK_TYPES = frozenset(
    {"text", "image", "document", "search_result", "tool_use", "tool_result", "thinking"}
    | {"redacted_thinking"}
)
# Anthropic's server tools run (and are billed) per use on Anthropic's side.
SERVER_TOOLS = ("web_search_", "web_fetch_", "code_execution_", "tool_search_tool_")
# Anthropic-defined client tools: the caller runs them, Claude alone knows their schema.
CLIENT_TOOLS = ("bash_", "text_editor_", "computer_", "memory_")
# anthropic-beta features priced beyond the catalog's rates (a context past its window,
# fast mode) or running tools on Anthropic's side.
PRICED_BETAS = ("context-1m-", "fast-mode-", "mcp-client-", "code-execution-")
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high"}


@dataclass(slots=True)
class Translation:
    """The request as a chat body, and what in it only Claude can take."""

    body: JSON
    problems: list[str] = field(default_factory=list)


def invalid(message: str, param: str | None = None) -> GatewayError:
    return bad_request(message, param=param)


def check(body: JSON, *, counting: bool = False) -> str:
    """The model id; a 400 for what Anthropic would refuse or the gateway cannot price."""
    taken = COUNT_TAKEN if counting else TAKEN
    for name in body:
        if name in UNPRICED:
            raise invalid(f"{name}: not available: {UNPRICED[name]}.", name)
        if name not in taken:
            raise invalid(f"{name}: Extra inputs are not permitted", name)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: Field required", "model")
    model = validation.storable_model_id(model)
    if not counting:
        cap = body.get("max_tokens")
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise invalid("max_tokens: Field required, an integer of at least 1", "max_tokens")
    _check_messages(body.get("messages"))
    system = body.get("system")
    blocks = isinstance(system, list) and all(_is_text(b) for b in system)
    if not (system is None or isinstance(system, str) or blocks):
        raise invalid("system: Input should be a valid string or a list of text blocks")
    for name, low, high in (("temperature", 0, 1), ("top_p", 0, 1)):
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise invalid(f"{name}: Input should be a number between {low} and {high}", name)
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise invalid("top_k: Input should be a non-negative integer", "top_k")
    stops = body.get("stop_sequences")
    if stops is not None and not (
        isinstance(stops, list) and all(isinstance(s, str) for s in stops)
    ):
        raise invalid("stop_sequences: Input should be a list of strings", "stop_sequences")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise invalid("stream: Input should be a valid boolean", "stream")
    for name in ("metadata", "tool_choice", "thinking", "output_config", "cache_control"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise invalid(f"{name}: Input should be a valid dictionary", name)
    metadata = body.get("metadata") or {}
    if metadata.get("user_id") is not None and not isinstance(metadata["user_id"], str):
        raise invalid("metadata.user_id: Input should be a valid string", "metadata")
    _check_tools(body.get("tools"))
    choice = body.get("tool_choice")
    if choice is not None:
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            raise invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            raise invalid("tool_choice.name: Field required", "tool_choice")
    _check_thinking(body.get("thinking"))
    if body.get("speed") not in (None, "standard"):
        raise invalid(
            "speed: only 'standard' is available: fast mode is billed beyond the model's "
            "listed prices.",
            "speed",
        )
    if body.get("service_tier") not in (None, "auto", "standard_only"):
        raise invalid("service_tier: Input should be 'auto' or 'standard_only'", "service_tier")
    return model


def check_betas(header: str | None) -> str:
    """The anthropic-beta header to forward to Anthropic; 400 for a priced feature."""
    betas = [beta.strip() for beta in (header or "").split(",") if beta.strip()]
    for beta in betas:
        if beta.startswith(PRICED_BETAS):
            raise invalid(
                f"anthropic-beta: {beta} is not available through the gateway: it is billed "
                "beyond the model's listed prices or runs tools on the provider's side."
            )
    return ",".join(betas)


def _is_text(block: Any) -> bool:
    return (
        isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    )


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: Input should be a non-empty list", "messages")
    for number, message in enumerate(messages):
        where = f"messages.{number}"
        if not isinstance(message, dict):
            raise invalid(f"{where}: Input should be a valid dictionary", "messages")
        if message.get("role") not in ("user", "assistant"):
            raise invalid(f"{where}.role: Input should be 'user' or 'assistant'", "messages")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise invalid(f"{where}.content: Input should be a string or a list", "messages")
        for block in content:
            kind = block.get("type") if isinstance(block, dict) else None
            if not isinstance(kind, str) or kind not in BLOCK_TYPES:
                raise invalid(
                    f"{where}.content: unknown content block type {kind!r}: it must be one of "
                    f"{', '.join(sorted(BLOCK_TYPES))}",
                    "messages",
                )
            if kind in ("image", "document"):
                source = block.get("source")
                if not isinstance(source, dict):
                    raise invalid(f"{where}.content.{kind}.source: Field required", "messages")
                if source.get("type") == "url":
                    media_urls.check(str(source.get("url") or ""))
            if kind == "tool_result" and not isinstance(block.get("content"), str | list | None):
                raise invalid(f"{where}.content.tool_result.content: a string or a list")


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise invalid("tools: Input should be a valid list", "tools")
    for number, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid(f"tools.{number}: Input should be a valid dictionary", "tools")
        kind = tool.get("type")
        if isinstance(kind, str) and kind.startswith(SERVER_TOOLS):
            raise invalid(
                f"tools.{number}: {kind} is a server tool, billed by the provider beyond "
                "token prices: it is not available through the gateway.",
                "tools",
            )
        if kind in (None, "custom"):
            if not isinstance(tool.get("name"), str) or not tool["name"]:
                raise invalid(f"tools.{number}.name: Field required", "tools")
            if not isinstance(tool.get("input_schema"), dict):
                raise invalid(f"tools.{number}.input_schema: Field required", "tools")
        elif not (isinstance(kind, str) and kind.startswith(CLIENT_TOOLS)):
            raise invalid(f"tools.{number}.type: unknown tool type {kind!r}", "tools")


def _check_thinking(thinking: JSON | None) -> None:
    if thinking is None:
        return
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
            raise invalid(
                "thinking.enabled.budget_tokens: Field required, an integer of at least 1024",
                "thinking",
            )
    elif kind not in ("disabled", "adaptive"):
        raise invalid("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")


# --- the chat body -------------------------------------------------------------------------


def to_chat(body: JSON) -> Translation:
    """The checked request as an OpenAI chat body (the output cap in max_completion_tokens).
    cache_control and context_management are left out: the other families cache prompts
    by themselves and manage no context."""
    out = Translation({"model": body["model"]})
    messages: list[JSON] = []
    system = body.get("system")
    if system:
        text = system if isinstance(system, str) else "\n\n".join(b["text"] for b in system)
        messages.append({"role": "system", "content": text})
    for message in body["messages"]:
        if message["role"] == "user":
            messages.extend(_user_messages(message["content"], out))
        else:
            messages.append(_assistant_message(message["content"], out))
    chat = out.body
    chat["messages"] = messages
    if body.get("max_tokens") is not None:
        chat["max_completion_tokens"] = body["max_tokens"]
    if body.get("stream"):
        chat["stream"] = True
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    if user := (body.get("metadata") or {}).get("user_id"):
        chat["user"] = user
    if body.get("tools"):
        chat["tools"] = [_function(tool, out) for tool in body["tools"]]
    if (choice := body.get("tool_choice")) is not None:
        kind = choice["type"]
        if kind == "tool":
            chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        else:
            chat["tool_choice"] = TOOL_CHOICES[kind]
        if choice.get("disable_parallel_tool_use"):
            chat["parallel_tool_calls"] = False
    reasoning = _reasoning(body.get("thinking"), body.get("output_config") or {})
    if reasoning:
        chat["reasoning"] = reasoning
    output_format = (body.get("output_config") or {}).get("format")
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        schema = {"name": "output", "schema": output_format.get("schema") or {}, "strict": True}
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    return out


def _reasoning(thinking: JSON | None, output_config: JSON) -> JSON:
    """Claude's thinking as the chat body's `reasoning` object (OpenRouter's)."""
    reasoning: JSON = {}
    kind = (thinking or {}).get("type")
    if kind == "enabled":
        reasoning["max_tokens"] = thinking["budget_tokens"]  # type: ignore[index]
    elif kind == "adaptive":
        reasoning["effort"] = "medium"
    effort = output_config.get("effort")
    if isinstance(effort, str) and effort in EFFORTS:
        reasoning["effort"] = EFFORTS[effort]
    return reasoning


def _function(tool: JSON, out: Translation) -> JSON:
    if tool.get("type") not in (None, "custom"):
        out.problems.append(
            f"{tool['type']} is an Anthropic-defined tool: only Claude models take it."
        )
    function: JSON = {"name": tool.get("name") or tool["type"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _user_messages(content: str | list[JSON], out: Translation) -> list[JSON]:
    """A user turn: its tool results as tool messages (first, as Anthropic puts them), then
    the rest as one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[JSON] = []
    parts: list[JSON] = []
    for block in content:
        if block["type"] == "tool_result":
            result = block.get("content")
            blocks = [{"type": "text", "text": result}] if isinstance(result, str) else result
            inner: list[JSON] = []
            for item in blocks or []:
                inner.extend(_parts(item, out))
            text = "".join(p["text"] for p in inner if p["type"] == "text")
            if block.get("is_error"):
                text = f"Error: {text}" if text else "Error"
            tools.append(
                {
                    "role": "tool",
                    "tool_call_id": str(block.get("tool_use_id") or ""),
                    "content": text,
                }
            )
            parts.extend(p for p in inner if p["type"] != "text")  # images the tool returned
        else:
            parts.extend(_parts(block, out))
    if not parts:
        return tools
    if all(p["type"] == "text" for p in parts) and len(parts) == 1:
        return [*tools, {"role": "user", "content": parts[0]["text"]}]
    return [*tools, {"role": "user", "content": parts}]


def _parts(block: JSON, out: Translation) -> list[JSON]:
    """One content block as chat content parts."""
    kind = block.get("type")
    if kind == "text":
        return [{"type": "text", "text": str(block.get("text") or "")}]
    if kind in ("image", "document"):
        return [_media(kind, block["source"], block, out)]
    if kind == "search_result":
        texts = [b.get("text", "") for b in block.get("content") or [] if isinstance(b, dict)]
        return [{"type": "text", "text": "\n".join([str(block.get("title") or ""), *texts])}]
    if kind in ("thinking", "redacted_thinking"):
        return []
    out.problems.append(f"{kind} blocks are only taken by Claude models.")
    return []


def _media(kind: str, source: JSON, block: JSON, out: Translation) -> JSON:
    """An image or document as a chat part. A part only Claude can read is kept in a form
    that sizing counts at the model's worst case (a `file` part), with the reason noted."""
    source_type = source.get("type")
    media_type = str(source.get("media_type") or "")
    if source_type == "base64":
        url = f"data:{media_type};base64,{source.get('data') or ''}"
        if kind == "image":
            return {"type": "image_url", "image_url": {"url": url}}
        name = str(block.get("title") or "document.pdf")
        return {"type": "file", "file": {"filename": name, "file_data": url}}
    if source_type == "url" and kind == "image":
        return {"type": "image_url", "image_url": {"url": str(source.get("url") or "")}}
    if source_type == "text" and kind == "document":
        return {"type": "text", "text": str(source.get("data") or "")}
    if source_type == "content" and kind == "document":
        inner = source.get("content")
        if isinstance(inner, str):
            return {"type": "text", "text": inner}
        texts = [b.get("text", "") for b in inner or [] if isinstance(b, dict)]
        return {"type": "text", "text": "\n".join(texts)}
    out.problems.append(
        f"a {kind} with a {source_type!r} source is only taken by Claude models; send it "
        "as base64 data."
    )
    return {"type": "file", "file": {"file_id": str(source.get("file_id") or source_type)}}


def _assistant_message(content: str | list[JSON], out: Translation) -> JSON:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[JSON] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": str(block.get("name") or ""), "arguments": arguments}
            calls.append(
                {"id": str(block.get("id") or ""), "type": "function", "function": function}
            )
        elif kind not in ("thinking", "redacted_thinking"):
            out.problems.append(f"{kind} blocks are only taken by Claude models.")
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message
