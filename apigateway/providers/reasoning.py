"""Reasoning and prompt caching in the chat body, as every adapter reads them. Pure.

A caller asks for reasoning with OpenAI's `reasoning_effort` or OpenRouter's `reasoning`
object ({effort, max_tokens, exclude, enabled}); validation checked both. The answer
carries the reasoning text as OpenRouter and DeepSeek return it: `reasoning` and
`reasoning_content` (both, the same text) on the message and on stream deltas, and for
Anthropic the thinking blocks with their signatures in `reasoning_details`, which rebuild
them when the caller sends the assistant message back. `exclude: true` thinks all the same
(and is billed for it) but leaves the text out.

`cache_control` ({"type": "ephemeral", "ttl": "5m" | "1h"}) on content parts, messages and
tools is for Anthropic; the other providers cache by themselves and are sent none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apigateway.errors import GatewayError, bad_request
from apigateway.providers.base import JSON

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
DEFAULT_EFFORT = "medium"
# The share of the output cap an effort gives to thinking, for providers that take a
# budget (Anthropic, Gemini 2.5), as OpenRouter maps them.
BUDGET_SHARE = {"minimal": 0.1, "low": 0.2, "medium": 0.5, "high": 0.8, "xhigh": 0.95}
ANTHROPIC_FORMAT = "anthropic-claude-v1"
REASONING_FIELDS = ("reasoning", "reasoning_content", "reasoning_details")


@dataclass(frozen=True, slots=True)
class Reasoning:
    """What the caller asked: an effort ("none": no reasoning; None: the provider's
    default), or a budget of thinking tokens; and whether the text is left out."""

    effort: str | None = None
    max_tokens: int | None = None
    exclude: bool = False

    @property
    def on(self) -> bool:
        return self.effort != "none"

    def share_of(self, cap: int) -> int:
        """Thinking tokens: the caller's budget, else the effort's share of the cap."""
        if self.max_tokens:
            return self.max_tokens
        return int(cap * BUDGET_SHARE[self.effort or DEFAULT_EFFORT])

    def effort_for(self, cap: int | None) -> str:
        """An effort level: the caller's, else the one nearest a budget's share of the cap."""
        if self.effort:
            return self.effort
        if self.max_tokens and cap:
            share = self.max_tokens / cap
            for effort in ("high", "medium", "low"):
                if share >= BUDGET_SHARE[effort]:
                    return effort
            return "minimal"
        return DEFAULT_EFFORT


def requested(body: JSON) -> Reasoning | None:
    """The reasoning the body asks for, or None when it says nothing of it."""
    given = body.get("reasoning")
    if given is None:
        effort = body.get("reasoning_effort")
        return None if effort is None else Reasoning(effort)
    effort = "none" if given.get("enabled") is False else given.get("effort")
    return Reasoning(effort, given.get("max_tokens"), bool(given.get("exclude")))


def accepted(deployment_can_reason: bool, body: JSON, model: str) -> Reasoning | None:
    """The body's reasoning, accepted for a deployment, or a 400 if the model cannot
    reason; None when nothing (or "none" from a model that never reasons) was asked."""
    asked = requested(body)
    if asked is None or (not asked.on and not deployment_can_reason):
        return None
    if not deployment_can_reason:
        raise cannot_reason(body, model)
    return asked


def cannot_reason(body: JSON, model: str) -> GatewayError:
    param = "reasoning" if "reasoning" in body else "reasoning_effort"
    return bad_request(
        f"The model '{model}' cannot reason: leave out '{param}', or choose a reasoning model "
        "(see /v1/models).",
        param=param,
        code="unsupported_parameter",
    )


def excluded(body: JSON) -> bool:
    given = body.get("reasoning")
    return isinstance(given, dict) and given.get("exclude") is True


def hide(payload: JSON) -> JSON:
    """A whole answer without its reasoning text (`exclude`)."""
    for choice in payload.get("choices") or ():
        if isinstance(choice, dict) and isinstance(message := choice.get("message"), dict):
            for name in REASONING_FIELDS:
                message.pop(name, None)
    return payload


def with_text(message: JSON, text: str) -> JSON:
    """Reasoning text in both fields callers read it from (DeepSeek's, OpenRouter's)."""
    message["reasoning_content"] = message["reasoning"] = text
    return message


def mirrored(message: JSON) -> None:
    """A message (or delta) of a provider that sends one of the two fields gets the other."""
    content, text = message.get("reasoning_content"), message.get("reasoning")
    if isinstance(content, str) and text is None:
        message["reasoning"] = content
    elif isinstance(text, str) and content is None:
        message["reasoning_content"] = text


# --- prompt caching ------------------------------------------------------------------------


def without_cache_control(body: JSON) -> tuple[list[Any] | None, list[Any] | None]:
    """The body's messages and tools with no `cache_control` and no `reasoning_details` (a
    copy of what had them, else the caller's list), for providers that take neither."""
    messages, tools = body.get("messages"), body.get("tools")
    if isinstance(messages, list) and any(_marked_message(m) for m in messages):
        messages = [_clean_message(m) if _marked_message(m) else m for m in messages]
    if isinstance(tools, list) and any(isinstance(t, dict) and "cache_control" in t for t in tools):
        tools = [_without(t, "cache_control") for t in tools]
    return messages, tools


def _marked_message(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    if "cache_control" in message or "reasoning_details" in message:
        return True
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict) and "cache_control" in part for part in content
    )


def _clean_message(message: JSON) -> JSON:
    out = {k: v for k, v in message.items() if k not in ("cache_control", "reasoning_details")}
    if isinstance(content := out.get("content"), list):
        out["content"] = [_without(part, "cache_control") for part in content]
    return out


def _without(item: Any, name: str) -> Any:
    if isinstance(item, dict) and name in item:
        return {k: v for k, v in item.items() if k != name}
    return item
