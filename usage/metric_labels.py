"""The values a metric label may take: each from a bounded set, so that what callers send
(any model id, a crafted status) can neither grow the metrics hash nor shape the
exposition. A value outside its set is counted as "other".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings

from usage.models import Endpoint

OTHER = "other"
ENDPOINTS = frozenset(Endpoint.values)
KINDS = frozenset({"prompt", "completion"})
CATALOG_SECONDS = 60.0  # an edited catalog reaches the labels within a minute

_catalog: tuple[float, frozenset[str]] | None = None


def catalog_models() -> frozenset[str]:
    """Every catalog model id, read at most once a minute per process: the usage drain runs
    every second."""
    global _catalog
    now = time.monotonic()
    if _catalog is None or now - _catalog[0] > CATALOG_SECONDS:
        # By name, not import: the catalog is the gateway's app, a layer above this one.
        catalog = apps.get_model("apigateway", "CatalogModel")
        _catalog = (now, frozenset(catalog.objects.values_list("public_id", flat=True)))
    return _catalog[1]


def forget_catalog() -> None:
    """The next label reads the catalog again."""
    global _catalog
    _catalog = None


def status(value: Any) -> str:
    """An HTTP status, 100 to 599, as text; anything else is "other"."""
    if isinstance(value, bool):
        return OTHER
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return OTHER
    if number != value and str(number) != value:  # 200.5, " 200"
        return OTHER
    return str(number) if 100 <= number <= 599 else OTHER


def member(value: object, allowed: frozenset[str]) -> str:
    """The value if it is one of `allowed`, else "other" (events are JSON: any type)."""
    return value if isinstance(value, str) and value in allowed else OTHER


def endpoint(value: object) -> str:
    return member(value, ENDPOINTS)


def kind(value: object) -> str:
    return member(value, KINDS)


@dataclass(frozen=True, slots=True)
class Bounds:
    """The sets that change with configuration: catalog model ids and provider names."""

    models: frozenset[str]
    providers: frozenset[str]

    @classmethod
    def current(cls) -> Bounds:
        return cls(catalog_models(), frozenset(settings.PROVIDERS))

    def model(self, value: object) -> str:
        return member(value, self.models)

    def provider(self, value: object) -> str:
        return member(value, self.providers)

    def label(self, name: str, value: object) -> str:
        """Any label by its name."""
        bound = {
            "model": self.model,
            "provider": self.provider,
            "endpoint": endpoint,
            "status": status,
            "kind": kind,
        }.get(name)
        if bound is None:
            raise ValueError(f"no bounded set for the label {name!r}")
        return bound(value)
