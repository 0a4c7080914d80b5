"""Which providers this server can call, for the operator (one log line at start) and for
customers (the overview says when none is, and whether the free demo model answers)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest

from apigateway import demo, routing
from apigateway.catalog import read_entries

logger = logging.getLogger("apigateway")
NO_PROVIDER = (
    "no provider is configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY or "
    "another provider's key, or OLLAMA_BASE_URL (see docs/configuration.md)"
)


@dataclass(frozen=True)
class Serving:
    providers: tuple[str, ...]  # configured, the demo aside, in PROVIDERS' order
    demo_model: str | None  # its id when the demo model is on


def serving() -> Serving:
    providers = tuple(
        name for name in settings.PROVIDERS if name != demo.PROVIDER and routing.is_configured(name)
    )
    return Serving(providers, demo.MODEL_ID if settings.GATEWAY_DEMO_MODEL else None)


def context(request: HttpRequest) -> dict[str, Serving]:
    """Template context processor: `serving` on every page (settings only, no query)."""
    return {"serving": serving()}


def models_per_provider() -> Counter[str]:
    """Enabled catalog models each configured provider serves (primary, balanced or
    fallback deployment); one database query."""
    counts: Counter[str] = Counter()
    for entry in read_entries().values():
        counts.update({route.provider for route in routing.deployments_for(entry)})
    return counts


def startup_line() -> tuple[int, str]:
    """(log level, message): the configured providers with their models, or a warning."""
    current = serving()
    demo_part = (
        f"demo model {current.demo_model} on (free local echo; GATEWAY_DEMO_MODEL)"
        if current.demo_model
        else "demo model off"
    )
    if not current.providers:
        answers = (
            "only the demo model answers"
            if current.demo_model
            else "every model call answers 404 model_not_available"
        )
        return logging.WARNING, f"{NO_PROVIDER}; {answers}"
    try:
        counts = models_per_provider()
    except DatabaseError as exc:  # (not migrated yet: the line still names the providers)
        logger.debug("model counts unavailable: %s", exc)
        counts = None
    listed = ", ".join(
        name if counts is None else f"{name} ({_models(counts[name])})"
        for name in current.providers
    )
    return logging.INFO, f"providers configured: {listed}; {demo_part}"


def _models(count: int) -> str:
    return f"{count} model" + ("" if count == 1 else "s")


def log_startup() -> None:
    """Once per process, at start (nexeon/asgi.py's lifespan)."""
    try:
        level, message = startup_line()
    except Exception:  # a report must never stop the server from starting
        logger.exception("could not list the configured providers")
        return
    logger.log(level, message)
