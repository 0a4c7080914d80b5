"""A caller's `model` → the catalog entry that serves it, or an error that helps.

Callers copy model ids from other services' docs, so besides the catalog's own ids the
gateway takes:

* a provider prefix, as OpenRouter spells ids: `openai/gpt-4o`, `anthropic/claude-sonnet-4`
  (the prefix must be the entry's provider or its `owned_by`);
* the provider's own name for a model, the entry's `upstream_model`: a dated Claude id
  (`claude-3-5-haiku-20241022`) is the entry whose upstream model it is, when exactly one
  entry has it.

The call is then the catalog model's: its answer's `model` and its usage record carry the
catalog id, as OpenAI answers with the model an alias resolved to.

An id that is none of these is a 404 that names the closest ids the key may use (never a
model outside the key's `allowed_models`); a catalog model whose provider the operator has
not configured is a 404 that says so (`model_not_available`), not a 503 an SDK retries.
Pure: the caller passes the catalog and what "configured" means.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping, Sequence

from apigateway.catalog import CatalogEntry
from apigateway.errors import GatewayError

# Where each mode's models are called (the gateway's own paths).
ENDPOINT_OF_MODE = {
    "chat": "/v1/chat/completions",
    "completion": "/v1/completions",
    "embedding": "/v1/embeddings",
    "image": "/v1/images/generations",
    "moderation": "/v1/moderations",
}
SUGGESTIONS = 3


def resolve(model: str, entries: Mapping[str, CatalogEntry]) -> CatalogEntry | None:
    """The entry `model` names: its id, a provider-prefixed id or its upstream name."""
    entry = entries.get(model)
    if entry is not None:
        return entry
    prefix, slash, rest = model.partition("/")
    if slash and rest:
        entry = entries.get(rest) or _by_upstream_name(rest, entries)
        if entry is not None and prefix in (entry.provider, entry.owned_by):
            return entry
    return _by_upstream_name(model, entries)


def _by_upstream_name(name: str, entries: Mapping[str, CatalogEntry]) -> CatalogEntry | None:
    found = [entry for entry in entries.values() if entry.upstream_model == name]
    return found[0] if len(found) == 1 else None


def find(
    model: str,
    entries: Mapping[str, CatalogEntry],
    *,
    allowed: Collection[str],
    available: Callable[[CatalogEntry], bool],
    mode: str | None = None,
) -> CatalogEntry:
    """The entry a call to an endpoint of `mode` (None: any) may use, or the 404 to answer.

    `allowed`: the key's allowed models (empty: all); `available`: whether the operator
    configured a deployment of an entry."""
    entry = resolve(model, entries)
    if entry is None or (allowed and entry.id not in allowed):
        usable = [e for e in entries.values() if _usable(e, allowed, available, mode)]
        raise unknown_model(model, closest(model, [e.id for e in usable]))
    if mode is not None and entry.mode != mode:
        raise wrong_endpoint(model, entry)
    if not available(entry):
        raise not_available(model, entry)
    return entry


def _usable(
    entry: CatalogEntry,
    allowed: Collection[str],
    available: Callable[[CatalogEntry], bool],
    mode: str | None,
) -> bool:
    return (
        (mode is None or entry.mode == mode)
        and (not allowed or entry.id in allowed)
        and available(entry)
    )


def closest(model: str, ids: list[str]) -> list[str]:
    """The ids most like `model` (also without a provider prefix), best first."""
    found = difflib.get_close_matches(model, ids, n=SUGGESTIONS, cutoff=0.6)
    _, slash, rest = model.rpartition("/")
    if slash and rest:
        found += difflib.get_close_matches(rest, ids, n=SUGGESTIONS, cutoff=0.6)
    return list(dict.fromkeys(found))[:SUGGESTIONS]


def unknown_model(model: str, suggestions: Sequence[str] = ()) -> GatewayError:
    message = f"The model '{model}' does not exist or you do not have access to it."
    if suggestions:
        quoted = [f"'{s}'" for s in suggestions]
        names = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        message += f" Did you mean {names}?"
    message += " GET /v1/models lists the models available."
    return GatewayError(404, message, param="model", code="model_not_found")


def wrong_endpoint(model: str, entry: CatalogEntry) -> GatewayError:
    kind = {"completion": "completions", "embedding": "embeddings"}.get(entry.mode, entry.mode)
    where = ENDPOINT_OF_MODE.get(entry.mode)
    message = f"The model '{model}' is a {kind} model"
    message += f": send it to {where}." if where else " and is not served by this endpoint."
    return GatewayError(404, message, param="model", code="model_not_found")


def not_available(model: str, entry: CatalogEntry) -> GatewayError:
    return GatewayError(
        404,
        f"The model '{model}' is in this gateway's catalog, but its operator has not "
        f"configured its provider ({entry.provider}), so it cannot be called here. "
        "GET /v1/models lists the models available.",
        param="model",
        code="model_not_available",
    )
