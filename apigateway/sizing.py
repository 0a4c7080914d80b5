"""The most a call can cost, known before it is sent: what its credit reservation covers.

* Output: the caller's max_completion_tokens / max_tokens (the smaller, when both are
  given); without one, the model's maximum output. Times n. The adapters send it upstream
  in the field each provider reads, never above the deployment's maximum output.
* Input: every token of text is at least one byte of the request body, so the body's
  size bounds text, tool definitions and inline (data: URL) images and audio. Input the
  gateway cannot size — a remote image, a file or document, a video — adds the model's
  worst case for each (CatalogEntry.unsized_input_tokens, by default its context window).
  Tools add TOOL_PROMPT_TOKENS (the prompt a provider wraps tool definitions in). No
  input passes the context window: the provider refuses it.

So what a provider can bill never exceeds the reservation, and concurrent calls cannot
multiply an overdraft: a call's charge is capped at what it reserved (credit/lua/settle).
"""

from __future__ import annotations

from typing import Any

DEFAULT_OUTPUT_TOKENS = 4096  # a model whose catalog row gives no maximum output
TOOL_PROMPT_TOKENS = 1024  # Anthropic's tool-use system prompt is ~350-500; margin kept
UNSIZED_FALLBACK_TOKENS = 1_000_000  # a model with neither a context window nor a setting
SIZED_PARTS = {"text", "refusal", "input_text"}


def output_cap(body: dict[str, Any], model_max: int | None) -> int:
    """The output tokens each choice may produce: what the caller asked (validation left it
    in max_completion_tokens, the smaller of the two fields; reserved as asked, even above
    the model's maximum, which the provider would refuse), else the model's maximum."""
    return body.get("max_completion_tokens") or model_max or DEFAULT_OUTPUT_TOKENS


def unsized_parts(messages: Any) -> int:
    """Content parts whose tokens the body's size does not bound: remote images, files,
    documents, video (an image or audio given inline as data: is sized by its bytes)."""
    count = 0
    if not isinstance(messages, list):
        return 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind in SIZED_PARTS or kind == "input_audio":
                continue
            if kind == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                if isinstance(url, str) and url.startswith("data:"):
                    continue
            count += 1
    return count


def prompt_bound(
    body: dict[str, Any],
    body_bytes: int,
    *,
    context_window: int | None,
    unsized_input_tokens: int | None,
) -> int:
    """The most input tokens this request can be billed for."""
    bound = body_bytes + (TOOL_PROMPT_TOKENS if body.get("tools") else 0)
    unsized = unsized_parts(body.get("messages"))
    if unsized:
        worst = unsized_input_tokens or context_window or UNSIZED_FALLBACK_TOKENS
        bound += unsized * worst
    return min(bound, context_window) if context_window else bound


def embedding_bound(body: dict[str, Any], body_bytes: int, context_window: int | None) -> int:
    """Embeddings: each input is at most the context window, and text at least a byte a
    token (token arrays are counted as they are)."""
    return inputs_bound(body.get("input"), body_bytes, context_window)


def inputs_bound(data: Any, body_bytes: int, context_window: int | None) -> int:
    """Inputs (`data`: embeddings' input, a completion's prompt) each at most the context
    window, and text at least a byte a token."""
    items = input_count(data)
    return min(body_bytes, context_window * items) if context_window else body_bytes


def input_count(data: Any) -> int:
    """How many inputs a text-or-tokens field holds: a string or a token array is one."""
    return len(data) if isinstance(data, list) and data and not isinstance(data[0], int) else 1


# The legacy completions API's default cap (OpenAI's, and vLLM's): sent whenever the
# caller gives none, so that no server's larger default is billed beyond the reservation.
COMPLETION_DEFAULT_OUTPUT_TOKENS = 16


def completion_outputs(body: dict[str, Any]) -> int:
    """The completions a legacy completions call produces, each up to the cap: `best_of`
    (at least `n`) for every prompt; all are billed, `n` are returned."""
    n = body.get("n") or 1
    return input_count(body.get("prompt")) * max(n, body.get("best_of") or 1)
