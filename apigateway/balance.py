"""Which deployment a call tries first, and in what order the others. Pure.

Weighted rendezvous (highest random weight) hashing: for a call, each of a model's balanced
deployments scores w / -ln(u), u a uniform hash of (the call's affinity key, the
deployment's key), and the call tries them best score first, then the model's ordered
fallbacks. Over many keys a deployment comes first for w / Σw of them; one key always gets
the same order; when a deployment rests (http.AttemptPlan passes over an open circuit) or
is removed, only its own calls move, each to its next deployment, and they come back when
it recovers.

The affinity key: the caller's `prompt_cache_key`, else its `user` or `safety_identifier`,
else the start of the conversation (the system and developer messages before the first
other message, and that message, each cut to AFFINITY_CHARS). Every turn of a conversation
starts the same way, so it stays on the deployment whose prompt cache holds its prefix,
while different conversations spread by weight. A call without one draws at random. The
hash is blake2b, the same in every worker process.

Cost: nothing for a model with one balanced deployment; else one blake2b of a few KiB at
most and a few integer operations per deployment.

Then the caller's `provider` preferences (`Preferences`, read by validation.routing_request)
filter and reorder each model's deployments, and its `models` list adds more models' after.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apigateway.routing import Route

AFFINITY_CHARS = 2048  # of each leading message's text: bounds the hashing per call
LEADING_MESSAGES = 8  # system/developer messages read before the first other one, at most
IDENTITY_FIELDS = ("prompt_cache_key", "user", "safety_identifier")
_MASK = (1 << 64) - 1


def salt_of(key: str) -> int:
    """A deployment's key as 64 bits (made once per route)."""
    return int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "big")


def affinity_key(body: dict[str, Any]) -> bytes | None:
    """What keeps a call with the calls it shares a provider cache with (module docstring)."""
    for name in IDENTITY_FIELDS:
        value = body.get(name)
        if isinstance(value, str) and value:
            return f"{name}\0{value[:AFFINITY_CHARS]}".encode(errors="surrogatepass")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    parts: list[str] = []
    for message in messages[:LEADING_MESSAGES]:
        if not isinstance(message, dict):
            break
        role = message.get("role")
        parts.append(f"{role}\0{_text(message.get('content'))}")
        if role not in ("system", "developer"):
            break
    return "\0".join(parts).encode(errors="surrogatepass")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content[:AFFINITY_CHARS]
    if not isinstance(content, list):
        return ""
    pieces: list[str] = []
    left = AFFINITY_CHARS
    for part in content:
        if left <= 0 or not isinstance(part, dict):
            break
        value = part.get("text")
        if not isinstance(value, str):
            image = part.get("image_url")
            value = image.get("url") if isinstance(image, dict) else part.get("type")
        piece = value[:left] if isinstance(value, str) else ""
        pieces.append(piece)
        left -= len(piece) + 1
    return "\0".join(pieces)


def ordered(routes: tuple[Route, ...], body: dict[str, Any] | None) -> tuple[Route, ...]:
    """The call's order: the balanced deployments by score, then the fallbacks as listed."""
    count = 0
    for route in routes:
        if route.weight is None:
            break
        count += 1
    if count < 2:
        return routes
    key = affinity_key(body) if body is not None else None
    if key is None:
        seed = random.getrandbits(64)
    else:
        seed = int.from_bytes(blake2b(key, digest_size=8).digest(), "big")
    balanced = sorted(
        routes[:count],
        # (the first `count` routes are the weighted ones: their weight is a float)
        key=lambda route: _score(seed ^ route.salt, route.weight),  # type: ignore[arg-type]
        reverse=True,
    )
    return (*balanced, *routes[count:])


def _score(x: int, weight: float) -> float:
    if weight <= 0:
        return 0.0  # standby: after every weighted one, in catalog order
    # splitmix64's finaliser: seed ^ salt → 64 well-mixed bits → u uniform in (0, 1)
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    x ^= x >> 31
    u = ((x >> 11) + 0.5) / (1 << 53)
    return weight / -math.log(u)


@dataclass(frozen=True, slots=True)
class Preferences:
    """The caller's `models` (tried in order after `model`) and `provider` preferences,
    as OpenRouter defines them, limited to what the gateway honours."""

    models: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    only: frozenset[str] | None = None
    ignore: frozenset[str] = frozenset()
    allow_fallbacks: bool = True
    max_prompt: Decimal | None = None  # USD per million tokens
    max_completion: Decimal | None = None

    def admits(self, route: Route) -> bool:
        if self.only is not None and route.provider not in self.only:
            return False
        if route.provider in self.ignore:
            return False
        prices = route.entry.prices
        return not (
            _above(prices.get("prompt"), self.max_prompt)
            or _above(prices.get("completion"), self.max_completion)
        )

    def arrange(self, routes: tuple[Route, ...]) -> tuple[Route, ...]:
        """`order`'s providers first, in its order; without fallbacks, only those (or,
        without `order`, only the first deployment)."""
        routes = tuple(route for route in routes if self.admits(route))
        if self.order:
            rank = {name: index for index, name in enumerate(self.order)}
            last = len(rank)
            routes = tuple(sorted(routes, key=lambda route: rank.get(route.provider, last)))
            if not self.allow_fallbacks:
                routes = tuple(route for route in routes if route.provider in rank)
        elif not self.allow_fallbacks:
            routes = routes[:1]
        return routes


def _above(price: Any, limit: Decimal | None) -> bool:
    return limit is not None and Decimal(str(price or 0)) > limit


def plan(
    per_model: Sequence[tuple[Route, ...]],
    body: dict[str, Any] | None,
    preferences: Preferences | None = None,
) -> tuple[Route, ...]:
    """Every deployment the call may use, in the order to try: each model's (balanced,
    then its fallbacks, filtered and reordered by the preferences), model after model."""
    if preferences is None and len(per_model) == 1:
        return ordered(per_model[0], body)
    routes: list[Route] = []
    for model_routes in per_model:
        chosen = ordered(model_routes, body)
        routes += chosen if preferences is None else preferences.arrange(chosen)
    return tuple(routes)
