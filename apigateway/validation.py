"""Check what must be checked before a request costs anything; answer OpenAI-style 400s.

Only the fields the gateway takes are taken (`request_fields`: an unknown field, or one
billed beyond the model's prices, is a 400). Shapes and ranges are checked where the
gateway relies on them or every provider rejects them; the rest is the provider's to
answer.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from apigateway import balance, media_urls, request_fields
from apigateway.errors import bad_request
from apigateway.providers.reasoning import EFFORTS

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
# OpenAI's content part types; those that may carry a URL are checked for one.
PART_TYPES = {"text", "refusal", "image_url", "input_audio", "file"}
MEDIA_PARTS = {"image_url", "input_audio", "file"}
JSON = dict[str, Any]
MODEL_MAX_LENGTH = 200  # the longest id a usage record holds


def parse_json(body: bytes) -> JSON:
    if not body:
        raise bad_request("The request body is empty; send a JSON object.")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_request(
            "We could not parse the JSON body of your request. Send valid JSON."
        ) from None
    if not isinstance(payload, dict):
        raise bad_request("The request body must be a JSON object.")
    return payload


def _number(body: JSON, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(f"'{name}' must be a number.", param=name)
    if not low <= value <= high:
        raise bad_request(
            f"{value} is not a valid value for '{name}': it must be between {low:g} and {high:g}.",
            param=name,
            code="invalid_value",
        )


def _integer(body: JSON, name: str, low: int, high: int | None = None) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"'{name}' must be an integer.", param=name)
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise bad_request(
            f"{value} is not a valid value for '{name}': it must be {bound}.",
            param=name,
            code="invalid_value",
        )


def _model(body: JSON) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("You must provide a model parameter.", param="model")
    return storable_model_id(model)


def storable_model_id(model: str) -> str:
    """Even an unknown model is recorded (its call answers 404), so it must be storable: a
    NUL or an overlong id would stop the usage pipeline's PostgreSQL batch."""
    if len(model) > MODEL_MAX_LENGTH or "\x00" in model:
        raise bad_request(
            f"'model' must be a model id from /v1/models (at most {MODEL_MAX_LENGTH} "
            "characters, no NUL).",
            param="model",
        )
    return model


def _boolean(body: JSON, name: str) -> None:
    if name in body and body[name] is not None and not isinstance(body[name], bool):
        raise bad_request(f"'{name}' must be a boolean.", param=name)


# chat's optional scalar fields, checked in this order when present.
CHAT_FIELDS = (
    ("temperature", _number, (0, 2)),
    ("top_p", _number, (0, 1)),
    ("presence_penalty", _number, (-2, 2)),
    ("frequency_penalty", _number, (-2, 2)),
    ("n", _integer, (1, 128)),
    ("max_tokens", _integer, (1,)),
    ("max_completion_tokens", _integer, (1,)),
    ("seed", _integer, (-(2**63), 2**63 - 1)),
    ("stream", _boolean, ()),
)


def chat(body: JSON) -> str:
    model = _model(body)
    request_fields.check(body, request_fields.CHAT_TAKEN, request_fields.CHAT_GUARDED)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array.", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            param = f"messages[{index}]"
            raise bad_request(f"'{param}' must be an object.", param=param)
        role = message.get("role")
        content = message.get("content")
        if type(role) is str and role in ROLES and type(content) is str:
            continue  # the usual message, valid as it is
        param = f"messages[{index}]"
        if not isinstance(role, str) or role not in ROLES:  # (a list or object is unhashable)
            raise bad_request(
                f"'{param}.role' must be one of {', '.join(sorted(ROLES))}.",
                param=f"{param}.role",
            )
        if content is None:
            if role != "assistant":
                raise bad_request(f"'{param}.content' is required.", param=f"{param}.content")
        elif not isinstance(content, str | list):
            raise bad_request(
                f"'{param}.content' must be a string or an array of content parts.",
                param=f"{param}.content",
            )
        elif isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if type(kind) is not str or kind not in PART_TYPES:
                    raise bad_request(
                        f"each part of '{param}.content' must be an object whose 'type' is "
                        "text, image_url, input_audio, file or refusal.",
                        param=f"{param}.content",
                    )
                if kind in MEDIA_PARTS:
                    media_urls.check_part(part)
    for name, check, bounds in CHAT_FIELDS:
        if name in body:  # (only the fields a request has cost a call)
            check(body, name, *bounds)
    if "max_tokens" in body or "max_completion_tokens" in body:
        one_output_cap(body)
    _stop_and_stream_options(body)
    tools = body.get("tools")
    if tools is not None and not (
        isinstance(tools, list)
        and all(
            isinstance(t, dict) and "function" in t and t.get("type", "function") == "function"
            for t in tools
        )
    ):
        raise bad_request("'tools' must be an array of function tools.", param="tools")
    response_format = body.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict)
        or response_format.get("type") not in ("text", "json_object", "json_schema")
    ):
        raise bad_request(
            "'response_format.type' must be 'text', 'json_object' or 'json_schema'.",
            param="response_format",
        )
    if "reasoning_effort" in body or "reasoning" in body:
        reasoning_controls(body)
    cache_controls(body)
    return model


# --- reasoning and prompt caching (providers/reasoning.py reads what passes) ---------------

REASONING_KEYS = {"effort", "max_tokens", "exclude", "enabled"}
CACHE_TTLS = ("5m", "1h")


def reasoning_controls(body: JSON) -> None:
    """`reasoning_effort` (OpenAI's) or `reasoning` (OpenRouter's object), not both."""
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in EFFORTS:
        raise bad_request(
            f"'reasoning_effort' must be one of {', '.join(EFFORTS)}.",
            param="reasoning_effort",
            code="invalid_value",
        )
    given = body.get("reasoning")
    if given is None:
        return
    problem = None
    if not isinstance(given, dict):
        problem = "'reasoning' must be an object: {effort, max_tokens, exclude, enabled}."
    elif unknown := sorted(set(given) - REASONING_KEYS):
        problem = f"Unrecognized field reasoning.{unknown[0]}: it takes effort, max_tokens, "
        problem += "exclude and enabled."
    elif given.get("effort") is not None and given["effort"] not in EFFORTS:
        problem = f"'reasoning.effort' must be one of {', '.join(EFFORTS)}."
    elif given.get("effort") is not None and given.get("max_tokens") is not None:
        problem = "Give 'reasoning.effort' or 'reasoning.max_tokens', not both."
    elif (budget := given.get("max_tokens")) is not None and (
        isinstance(budget, bool) or not isinstance(budget, int) or budget < 1
    ):
        problem = "'reasoning.max_tokens' must be a positive integer."
    elif any(given.get(name) not in (None, True, False) for name in ("exclude", "enabled")):
        problem = "'reasoning.exclude' and 'reasoning.enabled' must be booleans."
    elif effort is not None:
        problem = "Give 'reasoning_effort' or 'reasoning', not both."
    if problem:
        raise bad_request(problem, param="reasoning", code="invalid_value")


def cache_controls(body: JSON) -> None:
    """`cache_control` on messages, content parts and tools: {"type": "ephemeral"} with,
    optionally, a ttl of "5m" or "1h"."""
    for index, message in enumerate(body["messages"]):
        if "cache_control" in message:
            _cache_control(message["cache_control"], f"messages[{index}]")
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if "cache_control" in part:
                    _cache_control(part["cache_control"], f"messages[{index}].content")
    for index, tool in enumerate(body.get("tools") or ()):
        if "cache_control" in tool:
            _cache_control(tool["cache_control"], f"tools[{index}]")


def _cache_control(value: Any, param: str) -> None:
    if not (
        isinstance(value, dict)
        and value.get("type") == "ephemeral"
        and value.keys() <= {"type", "ttl"}
        and value.get("ttl", "5m") in CACHE_TTLS
    ):
        raise bad_request(
            f'\'{param}.cache_control\' must be {{"type": "ephemeral"}}, with an optional '
            '"ttl" of "5m" or "1h".',
            param=f"{param}.cache_control",
            code="invalid_value",
        )


def _stop_and_stream_options(body: JSON) -> None:
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str)
        or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        raise bad_request("'stop' must be a string or an array of up to 4 strings.", param="stop")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise bad_request("'stream_options' must be an object.", param="stream_options")
        if not body.get("stream"):
            raise bad_request(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )


def one_output_cap(body: JSON) -> None:
    """The caller's cap on output, in `max_completion_tokens` alone: the smaller of the two
    fields when both are given. Adapters send it in the one field their provider reads, so
    no provider can read a larger cap than the one credit was reserved for."""
    legacy = body.pop("max_tokens", None)
    cap = body.get("max_completion_tokens")
    if legacy is not None and (cap is None or legacy < cap):
        body["max_completion_tokens"] = legacy
    elif cap is None:
        body.pop("max_completion_tokens", None)


def embeddings(body: JSON) -> str:
    model = _model(body)
    request_fields.check(body, request_fields.EMBEDDINGS_TAKEN)
    data = body.get("input")
    if not _text_or_tokens(data, empty_text=False):
        raise bad_request(
            "'input' must be a non-empty string, array of strings, or array of token arrays.",
            param="input",
        )
    if isinstance(data, list) and len(data) > 2048:
        raise bad_request("'input' may hold at most 2048 items.", param="input")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    _integer(body, "dimensions", 1)
    return model


def _text_or_tokens(data: Any, *, empty_text: bool) -> bool:
    """A string, an array of strings, an array of token ids, or an array of token arrays
    (each array non-empty; a string may be empty only if `empty_text`)."""
    if isinstance(data, str):
        return empty_text or data != ""
    if not isinstance(data, list) or not data:
        return False
    return (
        all(isinstance(i, str) and (empty_text or i) for i in data)
        or all(isinstance(i, int) and not isinstance(i, bool) for i in data)
        or all(isinstance(i, list) and i and all(isinstance(t, int) for t in i) for i in data)
    )


def images(body: JSON) -> str:
    request_fields.check(body, request_fields.IMAGES_TAKEN)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad_request("'prompt' must be a non-empty string.", param="prompt")
    _integer(body, "n", 1, 10)
    if body.get("response_format") not in (None, "url", "b64_json"):
        raise bad_request("'response_format' must be 'url' or 'b64_json'.", param="response_format")
    for name in ("size", "quality", "style"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise bad_request(f"'{name}' must be a string.", param=name)
    model = body.get("model") or "dall-e-3"
    if not isinstance(model, str):
        raise bad_request("'model' must be a string.", param="model")
    return storable_model_id(model)


# The legacy completions API's optional scalar fields (max_tokens 0 with echo: the
# prompt's logprobs alone, as OpenAI allows).
COMPLETIONS_FIELDS = (
    ("temperature", _number, (0, 2)),
    ("top_p", _number, (0, 1)),
    ("presence_penalty", _number, (-2, 2)),
    ("frequency_penalty", _number, (-2, 2)),
    ("n", _integer, (1, 128)),
    ("best_of", _integer, (1, 20)),
    ("max_tokens", _integer, (0,)),
    ("logprobs", _integer, (0, 5)),
    ("seed", _integer, (-(2**63), 2**63 - 1)),
    ("stream", _boolean, ()),
    ("echo", _boolean, ()),
)


def completions(body: JSON) -> str:
    """/v1/completions: a prompt (text, texts, token ids or arrays of them), not messages."""
    model = _model(body)
    request_fields.check(body, request_fields.COMPLETIONS_TAKEN)
    if not _text_or_tokens(body.get("prompt"), empty_text=True):
        raise bad_request(
            "'prompt' must be a string, an array of strings, an array of token ids or an "
            "array of token arrays.",
            param="prompt",
        )
    for name, check, bounds in COMPLETIONS_FIELDS:
        if name in body:
            check(body, name, *bounds)
    best_of = body.get("best_of")
    if best_of is not None:
        if best_of < (body.get("n") or 1):
            raise bad_request("'best_of' must be greater than or equal to 'n'.", param="best_of")
        if best_of > 1 and body.get("stream"):
            raise bad_request("'best_of' cannot be used with 'stream'.", param="best_of")
    if body.get("suffix") is not None and not isinstance(body["suffix"], str):
        raise bad_request("'suffix' must be a string.", param="suffix")
    _stop_and_stream_options(body)
    return model


MODERATION_DEFAULT_MODEL = "omni-moderation-latest"  # OpenAI's, when none is given


def moderations(body: JSON) -> str:
    """/v1/moderations: a text, an array of texts, or an array of text and image parts."""
    request_fields.check(body, request_fields.MODERATIONS_TAKEN)
    data = body.get("input")
    if isinstance(data, list) and data and all(isinstance(i, dict) for i in data):
        for part in data:
            _moderation_part(part)
    elif not (
        (isinstance(data, str) and data)
        or (isinstance(data, list) and data and all(isinstance(i, str) for i in data))
    ):
        raise bad_request(
            "'input' must be a non-empty string, an array of strings, or an array of text "
            "and image_url parts.",
            param="input",
        )
    model = body.get("model") or MODERATION_DEFAULT_MODEL
    if not isinstance(model, str):
        raise bad_request("'model' must be a string.", param="model")
    return storable_model_id(model)


def _moderation_part(part: JSON) -> None:
    kind = part.get("type")
    if kind == "text" and isinstance(part.get("text"), str):
        return
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else None
    if kind != "image_url" or not isinstance(url, str):
        raise bad_request(
            "each part of 'input' must be {'type': 'text', 'text': ...} or "
            "{'type': 'image_url', 'image_url': {'url': ...}}.",
            param="input",
        )
    if (problem := media_urls.problem(url)) is not None:
        raise bad_request(problem, param="input")


# --- routing: the caller's `models` fallback list and `provider` preferences (OpenRouter's
# names), taken off the body here so that no provider is ever sent them ---

MAX_FALLBACK_MODELS = 10  # each model's deployments are tried: bounds a call's attempts
# OpenRouter's preferences the gateway cannot promise: refused rather than ignored.
PROVIDER_GUARANTEES = {
    "data_collection": lambda value: value in (None, "allow"),  # "deny": not known per provider
    "zdr": lambda value: value in (None, False),
    "enforce_distillable_text": lambda value: value in (None, False),
    "quantizations": lambda value: value in (None, []),
    "sort": lambda value: value in (None, "price"),  # every deployment bills the same price
    "require_parameters": lambda value: value is None or isinstance(value, bool),
}
MAX_PRICE_TAKEN = ("prompt", "completion")


def routing_request(body: JSON) -> balance.Preferences | None:
    """Pop `models` and `provider` from a chat body: None when neither is given, else what
    they ask for; a 400 naming the field for anything malformed or not honoured (never
    silently ignored: each narrows who may serve the call)."""
    models = body.pop("models", None)
    provider = body.pop("provider", None)
    if models is None and provider is None:
        return None
    found: dict[str, Any] = {}
    if models is not None:
        if not (
            isinstance(models, list)
            and len(models) <= MAX_FALLBACK_MODELS
            and all(isinstance(m, str) and m for m in models)
        ):
            raise bad_request(
                f"'models' must be an array of at most {MAX_FALLBACK_MODELS} model ids, tried "
                "in order after 'model'.",
                param="models",
            )
        found["models"] = tuple(dict.fromkeys(storable_model_id(m) for m in models))
    if provider is not None:
        found.update(_provider_preferences(provider))
    return balance.Preferences(**found)


def _provider_preferences(provider: Any) -> JSON:
    if not isinstance(provider, dict):
        raise bad_request("'provider' must be an object of routing preferences.", param="provider")
    found: JSON = {}
    for name, value in provider.items():
        param = f"provider.{name}"
        if name in ("order", "only", "allow", "ignore"):
            if value is None:
                continue
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad_request(f"'{param}' must be an array of provider names.", param=param)
            if name == "order":
                found["order"] = tuple(value)
            elif name == "ignore":
                found["ignore"] = frozenset(value)
            else:  # `allow` is `only` under another name
                found["only"] = frozenset(value) & found.get("only", frozenset(value))
        elif name == "allow_fallbacks":
            if value is not None and not isinstance(value, bool):
                raise bad_request(f"'{param}' must be a boolean.", param=param)
            found["allow_fallbacks"] = value is not False
        elif name == "max_price":
            found.update(_max_price(value))
        elif name in PROVIDER_GUARANTEES:
            if not PROVIDER_GUARANTEES[name](value):
                raise bad_request(
                    f"'{param}' = {orjson.dumps(value).decode()} cannot be honoured: the "
                    "gateway does not know this of its providers, and would not ignore it.",
                    param=param,
                    code="unsupported_value",
                )
        else:
            raise bad_request(f"Unrecognized routing preference supplied: '{param}'.", param=param)
    return found


def _max_price(value: Any) -> JSON:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request("'provider.max_price' must be an object.", param="provider.max_price")
    found: JSON = {}
    for name, limit in value.items():
        param = f"provider.max_price.{name}"
        if name not in MAX_PRICE_TAKEN:
            raise bad_request(
                f"'{param}' cannot be honoured: models are priced per token; limit "
                "'prompt' and 'completion' (USD per million tokens).",
                param=param,
                code="unsupported_value",
            )
        try:
            amount = Decimal(str(limit)) if not isinstance(limit, bool) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0:
            raise bad_request(f"'{param}' must be a number of USD per million tokens.", param=param)
        found[f"max_{name}"] = amount
    return found
