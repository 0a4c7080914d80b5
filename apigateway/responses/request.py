"""A Responses API request: checked, and translated to the chat completions body the
adapters take (and the relay sizes, reserves and settles by). Pure.

The gateway stores nothing: `previous_response_id`, `conversation`, stored prompts,
`background` and file ids (which would name the operator's files at the provider) are
refused; `store` is taken and always false. Built-in tools (web search, file search, code
interpreter, computer use, ...) are billed beyond a model's token prices, so only function
tools are taken. What only a provider with the Responses API can do (`top_logprobs`,
`truncation: auto`, output logprobs) is refused for the others by `Translation.refused`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apigateway.errors import GatewayError, bad_request
from apigateway.request_fields import CHAT_GUARDED, UNPRICED, check

JSON = dict[str, Any]

NOT_STORED = (
    "responses are not stored by this gateway. Send the earlier turns in 'input' instead "
    "(the output items of the previous response can be appended to it as they are)."
)

# Sent to a provider with the Responses API as the caller gave them (the model, the output
# cap and `store` are set by the passthrough).
FORWARDED = frozenset(
    {"model", "input", "instructions", "max_output_tokens", "metadata", "parallel_tool_calls"}
    | {"reasoning", "stream", "stream_options", "temperature", "text", "tool_choice", "tools"}
    | {"top_p", "top_logprobs", "truncation", "user", "include", "prompt_cache_key"}
    | {"safety_identifier", "max_tool_calls"}
)
TAKEN = FORWARDED | {"store"}


def _refused(reason: str) -> Callable[[Any], str | None]:
    return lambda value: None if value is None else reason


def _background(value: Any) -> str | None:
    if value is None or value is False:
        return None
    return f"background responses are not available: {NOT_STORED}"


# Taken only with a value that needs nothing stored and costs nothing beyond the prices.
GUARDED = {
    "service_tier": CHAT_GUARDED["service_tier"],
    "previous_response_id": _refused(f"'previous_response_id' is not available: {NOT_STORED}"),
    "conversation": _refused(f"'conversation' is not available: {NOT_STORED}"),
    "background": _background,
    "prompt": _refused(
        "stored prompts ('prompt') are not available: send the instructions and input themselves."
    ),
}
# `include` values: encrypted reasoning is what a stateless client carries between turns
# (a translated model has none to give: its reasoning comes as text); output logprobs only
# from a provider with the Responses API; the rest need built-in tools or stored inputs.
INCLUDE_TAKEN = {"reasoning.encrypted_content", "message.output_text.logprobs"}
ROLES = {"user", "assistant", "system", "developer"}
TOOL_CHOICES = {"auto", "none", "required"}


@dataclass(slots=True)
class Translation:
    """The chat body of a Responses request, and what in the request only a provider with
    the Responses API can do (field → why; a 400 for the others)."""

    chat: JSON
    refused: dict[str, str] = field(default_factory=dict)


def translate(body: JSON) -> Translation:
    """The request checked (a 400 naming the field) and translated."""
    check(body, TAKEN, GUARDED)
    if body.get("store") is not None and not isinstance(body["store"], bool):
        raise bad_request("'store' must be a boolean.", param="store")
    out = Translation(chat={})
    chat = out.chat
    if "model" in body:
        chat["model"] = body["model"]
    messages: list[JSON] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise bad_request("'instructions' must be a string.", param="instructions")
        messages.append({"role": "system", "content": instructions})
    messages += input_messages(body.get("input"))
    chat["messages"] = messages
    cap = body.get("max_output_tokens")
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise bad_request(
                "'max_output_tokens' must be a positive integer.",
                param="max_output_tokens",
                code="invalid_value",
            )
        chat["max_completion_tokens"] = cap
    for name in ("temperature", "top_p", "parallel_tool_calls", "user", "stream"):
        if body.get(name) is not None:
            chat[name] = body[name]
    for name in ("prompt_cache_key", "safety_identifier"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("tools") is not None:
        chat["tools"] = tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = tool_choice(body["tool_choice"])
    reasoning(body.get("reasoning"), chat)
    text(body.get("text"), chat)
    include(body.get("include"), out.refused)
    if body.get("top_logprobs") is not None:
        out.refused["top_logprobs"] = "'top_logprobs'"
    if body.get("truncation") not in (None, "disabled"):
        if body["truncation"] != "auto":
            raise bad_request("'truncation' must be 'auto' or 'disabled'.", param="truncation")
        out.refused["truncation"] = "'truncation: auto'"
    if body.get("stream_options") is not None and not isinstance(body["stream_options"], dict):
        raise bad_request("'stream_options' must be an object.", param="stream_options")
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        raise bad_request("'metadata' must be an object.", param="metadata")
    return out


def input_messages(given: Any) -> list[JSON]:
    """`input` (a string, or a list of items) as chat messages."""
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    if not isinstance(given, list) or not given:
        raise bad_request("'input' must be a string or a non-empty array of items.", param="input")
    messages: list[JSON] = []
    for index, item in enumerate(given):
        param = f"input[{index}]"
        if not isinstance(item, dict):
            raise bad_request(f"'{param}' must be an object.", param=param)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            messages.append(message(item, param))
        elif kind == "function_call":
            call = function_call(item, param)
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
                last.setdefault("content", None)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(function_output(item, param))
        elif kind == "reasoning":
            # The model's earlier thinking: chat has no place for it (and reasoning
            # providers want it left out of the history); a provider with the Responses
            # API gets it as it is.
            continue
        elif kind == "item_reference":
            raise bad_request(
                f"'{param}': item references need stored items; {NOT_STORED}", param=param
            )
        else:
            raise bad_request(
                f"'{param}.type' {kind!r} is not available: input items are messages, "
                "function_call, function_call_output and reasoning items.",
                param=param,
            )
    return messages


def message(item: JSON, param: str) -> JSON:
    role = item.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise bad_request(
            f"'{param}.role' must be one of {', '.join(sorted(ROLES))}.", param=f"{param}.role"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise bad_request(
            f"'{param}.content' must be a string or an array of content parts.",
            param=f"{param}.content",
        )
    parts = [content_part(part, f"{param}.content[{i}]") for i, part in enumerate(content)]
    if role == "assistant":
        # Chat's assistant content is text: the earlier answer's text and refusals.
        if any(part["type"] != "text" for part in parts):
            raise bad_request(
                f"'{param}.content': an assistant message holds output_text and refusal parts.",
                param=f"{param}.content",
            )
        return {"role": role, "content": "".join(part["text"] for part in parts)}
    return {"role": role, "content": parts}


def content_part(part: Any, param: str) -> JSON:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": _text(part.get("text"), f"{param}.text")}
    if kind == "refusal":
        return {"type": "text", "text": _text(part.get("refusal"), f"{param}.refusal")}
    if kind == "input_image":
        if part.get("file_id") is not None:
            raise _file_id(param)
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise bad_request(f"'{param}.image_url' must be a URL.", param=f"{param}.image_url")
        image: JSON = {"url": url}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if part.get("file_id") is not None:
            raise _file_id(param)
        if part.get("file_url") is not None:
            raise bad_request(
                f"'{param}.file_url' is not available: send the file inline, as file_data.",
                param=f"{param}.file_url",
            )
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            raise bad_request(
                f"'{param}.file_data' must be the file's data.", param=f"{param}.file_data"
            )
        file: JSON = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise bad_request(
        f"'{param}.type' must be input_text, input_image or input_file (output_text or "
        "refusal in an assistant message).",
        param=param,
    )


def _file_id(param: str) -> GatewayError:
    return bad_request(
        f"'{param}.file_id' is not available: files are not stored by this gateway; send "
        "the data inline.",
        param=f"{param}.file_id",
    )


def function_call(item: JSON, param: str) -> JSON:
    call_id = _text(item.get("call_id"), f"{param}.call_id")
    name = _text(item.get("name"), f"{param}.name")
    arguments = _text(item.get("arguments"), f"{param}.arguments")
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def function_output(item: JSON, param: str) -> JSON:
    call_id = _text(item.get("call_id"), f"{param}.call_id")
    output = item.get("output")
    if isinstance(output, list):
        texts = []
        for index, part in enumerate(output):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in ("input_text", "output_text"):
                raise bad_request(
                    f"'{param}.output[{index}]': a function's output is text here.",
                    param=f"{param}.output",
                )
            texts.append(_text(part.get("text"), f"{param}.output[{index}].text"))
        output = "".join(texts)
    return {"role": "tool", "tool_call_id": call_id, "content": _text(output, f"{param}.output")}


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"'{param}' must be a string.", param=param)
    return value


def tools(given: Any) -> list[JSON]:
    """Responses' flat function tools as chat's nested ones."""
    if not isinstance(given, list):
        raise bad_request("'tools' must be an array of tools.", param="tools")
    out = []
    for index, tool in enumerate(given):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise bad_request(
                f"'tools[{index}]': {kind!r} tools are not available: built-in tools are "
                "billed beyond a model's token prices; only function tools are taken.",
                param="tools",
                code=UNPRICED,
            )
        function: JSON = {"name": _text(tool.get("name"), f"tools[{index}].name")}
        for name in ("description", "parameters", "strict"):
            if tool.get(name) is not None:
                function[name] = tool[name]
        out.append({"type": "function", "function": function})
    return out


def tool_choice(given: Any) -> Any:
    if isinstance(given, str) and given in TOOL_CHOICES:
        return given
    if isinstance(given, dict) and given.get("type") == "function":
        return {
            "type": "function",
            "function": {"name": _text(given.get("name"), "tool_choice.name")},
        }
    raise bad_request(
        "'tool_choice' must be auto, none, required or a function ({'type': 'function', "
        "'name': ...}).",
        param="tool_choice",
    )


def reasoning(given: Any, chat: JSON) -> None:
    if given is None:
        return
    if not isinstance(given, dict):
        raise bad_request("'reasoning' must be an object.", param="reasoning")
    effort = given.get("effort")
    if effort is not None:
        chat["reasoning_effort"] = _text(effort, "reasoning.effort")


def text(given: Any, chat: JSON) -> None:
    """`text.format` as chat's response_format; `text.verbosity` as chat's verbosity."""
    if given is None:
        return
    if not isinstance(given, dict):
        raise bad_request("'text' must be an object.", param="text")
    if given.get("verbosity") is not None:
        chat["verbosity"] = given["verbosity"]
    form = given.get("format")
    if form is None:
        return
    kind = form.get("type") if isinstance(form, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        chat["response_format"] = {"type": "json_object"}
        return
    if kind == "json_schema":
        schema: JSON = {"name": _text(form.get("name"), "text.format.name")}
        if not isinstance(form.get("schema"), dict):
            raise bad_request("'text.format.schema' must be an object.", param="text.format.schema")
        for name in ("description", "schema", "strict"):
            if form.get(name) is not None:
                schema[name] = form[name]
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
        return
    raise bad_request(
        "'text.format.type' must be text, json_object or json_schema.", param="text.format"
    )


def include(given: Any, refused: dict[str, str]) -> None:
    if given is None:
        return
    if not isinstance(given, list) or not all(isinstance(value, str) for value in given):
        raise bad_request("'include' must be an array of strings.", param="include")
    for value in given:
        if value not in INCLUDE_TAKEN:
            raise bad_request(
                f"include {value!r} is not available: it needs built-in tools or stored "
                f"inputs; only {', '.join(sorted(INCLUDE_TAKEN))} may be included.",
                param="include",
            )
    if "message.output_text.logprobs" in given:
        refused["include"] = "include 'message.output_text.logprobs'"
