"""Chat answers as Responses API objects: a chat completion as a Response, a stream of chat
chunks as the Responses streaming events, in the order and shapes OpenAI sends them
(openai/types/responses). Pure.

Reasoning text (chat's `reasoning_content`, or `reasoning`) becomes a reasoning item whose
`content` holds it as reasoning_text; text becomes a message item; tool calls become
function_call items.
"""

from __future__ import annotations

from typing import Any

from apigateway import ids
from apigateway.providers.base import JSON, StreamTranslator, Usage, now
from apigateway.sse import SSEEvent

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    """An id as OpenAI's look: a prefix (resp, msg, fc, rs) and random letters."""
    return prefix + "_" + ids.completion_id().removeprefix("chatcmpl-")


def shell(request: JSON, model: str, response_id: str, created_at: int) -> JSON:
    """A Response with the request's settings and no output, in progress."""
    reasoning = request.get("reasoning") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": model,
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": request.get("safety_identifier"),
        "service_tier": "default",
        "store": False,  # nothing is stored, whatever was asked
        "temperature": request.get("temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_logprobs": 0,
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def usage_object(usage: Usage) -> JSON:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def reasoning_tokens(chat_usage: Any) -> int:
    details = chat_usage.get("completion_tokens_details") if isinstance(chat_usage, dict) else None
    value = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def finish(response: JSON, finish_reason: str | None, usage: Usage) -> JSON:
    """The response done: completed, or incomplete where the model was stopped short."""
    reason = INCOMPLETE.get(finish_reason or "")
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    response["completed_at"] = None if reason else now()
    response["usage"] = usage_object(usage)
    return response


def message_item(item_id: str, text: str, refusal: str | None, status: str) -> JSON:
    content: list[JSON] = []
    if text or refusal is None:
        content.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    if refusal is not None:
        content.append({"type": "refusal", "refusal": refusal})
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def reasoning_item(item_id: str, text: str) -> JSON:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": "completed",
    }


def function_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> JSON:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def reasoning_text(holder: JSON) -> str | None:
    """A chat message's or delta's reasoning: DeepSeek's reasoning_content, or OpenRouter's
    (and vLLM's) reasoning (the same text when both are sent)."""
    value = holder.get("reasoning_content") or holder.get("reasoning")
    return value if isinstance(value, str) and value else None


def from_chat(completion: JSON, usage: Usage, request: JSON, model: str) -> JSON:
    """A whole chat completion (an adapter's, already read) as a Response."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    if not usage.reasoning_tokens:
        usage.reasoning_tokens = reasoning_tokens(completion.get("usage"))
    created = completion.get("created")
    response = shell(request, model, new_id("resp"), created if isinstance(created, int) else now())
    output = response["output"]
    if thought := reasoning_text(message):
        output.append(reasoning_item(new_id("rs"), thought))
    text = message.get("content")
    refusal = message.get("refusal")
    incomplete = choice.get("finish_reason") in INCOMPLETE
    if (isinstance(text, str) and text) or isinstance(refusal, str):
        status = "incomplete" if incomplete else "completed"
        output.append(
            message_item(
                new_id("msg"),
                text if isinstance(text, str) else "",
                refusal if isinstance(refusal, str) else None,
                status,
            )
        )
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(
            function_item(
                new_id("fc"),
                str(call.get("id") or new_id("call")),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
                "completed",
            )
        )
    if not output:  # an empty answer is still a message
        output.append(message_item(new_id("msg"), "", None, "completed"))
    return finish(response, choice.get("finish_reason"), usage)


class _Item:
    """An output item being streamed."""

    __slots__ = ("call_id", "index", "item_id", "kind", "name", "refusal", "text")

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind  # reasoning, message, refusal (a message) or function_call
        self.index = index
        self.item_id = item_id
        self.text = ""  # reasoning, text, or a call's arguments so far
        self.refusal = ""
        self.call_id = ""
        self.name = ""


class ChatEvents:
    """Feeds an adapter's chat stream translator and turns its chunks into the Responses
    streaming events; the relay reads the usage and output counts of the chat translator
    through it. Every event has its `sequence_number`; the stream's last event (completed
    or incomplete, with usage) comes from `close`."""

    def __init__(self, chat: StreamTranslator, request: JSON, model: str) -> None:
        self.chat = chat
        self.request = request
        self.response = shell(request, model, new_id("resp"), now())
        self.sequence = 0
        self.started = False
        self.items: list[JSON] = []  # done items, in output order (by index)
        self.open: list[_Item] = []
        self.calls: dict[int, _Item] = {}  # streamed tool calls by their chat index
        self.finish_reason: str | None = None

    # --- what the relay reads of a stream translator ---
    @property
    def finished(self) -> bool:
        return self.chat.finished

    @property
    def usage(self) -> Usage | None:
        return self.chat.usage

    @property
    def produced(self) -> bool:
        return self.chat.produced

    def billable_usage(self, prompt_estimate: int) -> Usage:
        return self.chat.billable_usage(prompt_estimate)

    # --- events ---
    def event(self, kind: str, **fields: Any) -> JSON:
        event = {"type": kind, **fields, "sequence_number": self.sequence}
        self.sequence += 1
        return event

    def start(self) -> list[JSON]:
        if self.started:
            return []
        self.started = True
        return [
            self.event("response.created", response=dict(self.response)),
            self.event("response.in_progress", response=dict(self.response)),
        ]

    def feed(self, event: SSEEvent) -> list[JSON]:
        out: list[JSON] = []
        for chunk in self.chat.feed(event):
            for choice in chunk.get("choices") or []:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                out += self.delta(choice.get("delta") or {})
                if choice.get("finish_reason"):
                    self.finish_reason = choice["finish_reason"]
        return out

    def delta(self, delta: JSON) -> list[JSON]:
        out: list[JSON] = []
        if thought := reasoning_text(delta):
            item = self.current("reasoning", out)
            item.text += thought
            out.append(self.part_event("response.reasoning_text.delta", item, delta=thought))
        text = delta.get("content")
        if isinstance(text, str) and text:
            item = self.current("message", out)
            item.text += text
            out.append(self.part_event("response.output_text.delta", item, delta=text, logprobs=[]))
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            item = self.current("refusal", out)
            item.refusal += refusal
            out.append(self.part_event("response.refusal.delta", item, delta=refusal))
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                out += self.tool_call(call)
        return out

    def part_event(self, kind: str, item: _Item, **fields: Any) -> JSON:
        return self.event(
            kind, item_id=item.item_id, output_index=item.index, content_index=0, **fields
        )

    def current(self, kind: str, out: list[JSON]) -> _Item:
        """The open item of this kind, else a new one (the open ones done first)."""
        if self.open and self.open[-1].kind == kind:
            return self.open[-1]
        out += self.start() + self.close_open()
        prefix = {"reasoning": "rs", "message": "msg", "refusal": "msg"}[kind]
        item = _Item(kind, self.next_index(), new_id(prefix))
        self.open.append(item)
        if kind == "reasoning":
            added = {
                "id": item.item_id,
                "type": "reasoning",
                "summary": [],
                "content": [],
                "status": "in_progress",
            }
            part: JSON = {"type": "reasoning_text", "text": ""}
        else:
            added = {**message_item(item.item_id, "", None, "in_progress"), "content": []}
            part = (
                {"type": "refusal", "refusal": ""}
                if kind == "refusal"
                else {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            )
        out.append(self.event("response.output_item.added", output_index=item.index, item=added))
        out.append(self.part_event("response.content_part.added", item, part=part))
        return item

    def next_index(self) -> int:
        return len(self.items) + len(self.open)

    def tool_call(self, call: JSON) -> list[JSON]:
        out: list[JSON] = []
        position = call.get("index", 0)
        function: JSON = call["function"] if isinstance(call.get("function"), dict) else {}
        item = self.calls.get(position)
        if item is None:
            out += self.start()
            if any(open_item.kind != "function_call" for open_item in self.open):
                out += self.close_open()
            item = _Item("function_call", self.next_index(), new_id("fc"))
            item.call_id = str(call.get("id") or new_id("call"))
            item.name = str(function.get("name") or "")
            self.calls[position] = item
            self.open.append(item)
            added = function_item(item.item_id, item.call_id, item.name, "", "in_progress")
            out.append(
                self.event("response.output_item.added", output_index=item.index, item=added)
            )
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.text += arguments
            out.append(
                self.event(
                    "response.function_call_arguments.delta",
                    item_id=item.item_id,
                    output_index=item.index,
                    delta=arguments,
                )
            )
        return out

    def close_open(self, status: str = "completed") -> list[JSON]:
        out: list[JSON] = []
        for item in self.open:
            if item.kind == "function_call":
                out.append(
                    self.event(
                        "response.function_call_arguments.done",
                        item_id=item.item_id,
                        output_index=item.index,
                        arguments=item.text,
                    )
                )
                done = function_item(item.item_id, item.call_id, item.name, item.text, "completed")
            elif item.kind == "reasoning":
                out.append(self.part_event("response.reasoning_text.done", item, text=item.text))
                part = {"type": "reasoning_text", "text": item.text}
                out.append(self.part_event("response.content_part.done", item, part=part))
                done = reasoning_item(item.item_id, item.text)
            else:
                refusal = item.refusal if item.kind == "refusal" else None
                done = message_item(item.item_id, item.text, refusal, status)
                if refusal is not None:
                    out.append(self.part_event("response.refusal.done", item, refusal=refusal))
                else:
                    out.append(
                        self.part_event(
                            "response.output_text.done", item, text=item.text, logprobs=[]
                        )
                    )
                out.append(
                    self.part_event("response.content_part.done", item, part=done["content"][0])
                )
            out.append(self.event("response.output_item.done", output_index=item.index, item=done))
            self.items.append(done)
        self.open = []
        return out

    def close(self) -> list[JSON]:
        """The stream's end: open items done, then response.completed (or incomplete) with
        the usage; a stream the provider broke off ends in response.failed."""
        out = self.start()
        if not self.chat.finished:
            return out + self.fail("server_error", "the provider ended the stream early")
        stopped = self.finish_reason in INCOMPLETE
        out += self.close_open("incomplete" if stopped else "completed")
        usage = self.chat.billable_usage(prompt_estimate=0)
        if not usage.reasoning_tokens and self.chat.usage is not None:
            usage.reasoning_tokens = self.chat.usage.reasoning_tokens
        response = finish({**self.response, "output": list(self.items)}, self.finish_reason, usage)
        kind = "response.incomplete" if stopped else "response.completed"
        return [*out, self.event(kind, response=response)]

    def fail(self, code: str, message: str) -> list[JSON]:
        """response.failed, with the items done so far."""
        response = {
            **self.response,
            "status": "failed",
            "output": list(self.items),
            "error": {"code": code, "message": message},
        }
        return [self.event("response.failed", response=response)]
