"""The model catalog: public model ids, where they are served and what they cost."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models


class Mode(models.TextChoices):
    CHAT = "chat", "Chat"
    EMBEDDING = "embedding", "Embedding"
    IMAGE = "image", "Image"
    COMPLETION = "completion", "Completion (legacy prompt API)"
    MODERATION = "moderation", "Moderation"


class CatalogModel(models.Model):
    public_id = models.CharField(
        "model id", max_length=200, unique=True, help_text="What API callers send as `model`."
    )
    provider = models.CharField(
        max_length=64, help_text="A provider name from the README (openai, anthropic, ...)."
    )
    upstream_model = models.CharField(max_length=200, help_text="The provider's own model name.")
    owned_by = models.CharField(max_length=64)
    created = models.BigIntegerField(help_text="Unix time shown in /v1/models.")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.CHAT)
    context_window = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    unsized_input_tokens = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Credit is reserved for this many input tokens for each part of a request "
        "the gateway cannot size before the call (a remote image, a file or document, a "
        "video). Empty: the context window (the most the provider can bill).",
    )
    prices = models.JSONField(
        default=dict,
        blank=True,
        help_text='USD per million tokens as decimal strings: {"prompt": "2.50", '
        '"completion": "10.00", "cached_prompt": "1.25"}; prompt cache writes (Anthropic): '
        '"cache_write_prompt" (5 minutes) and "cache_write_prompt_1h", else the prompt price; '
        'images: {"image": {"standard/1024x1024": "0.04"}}.',
    )
    reasoning = models.BooleanField(
        default=False,
        help_text="The model can think: reasoning_effort and reasoning are taken (else a 400).",
    )
    structured_output = models.BooleanField(
        default=False,
        help_text="Anthropic models: response_format json_schema is sent as the provider's "
        "structured output (output_config.format) rather than as an instruction.",
    )
    deployments = models.JSONField(
        default=list,
        blank=True,
        help_text="More deployments of this model (keys, regions, providers) that share its "
        'calls with the one above, by weight: [{"provider": "openai-eu", "weight": 2}, '
        '{"provider": "azure", "upstream_model": "gpt-4o-prod"}]. The one above weighs 1 '
        "unless listed here with another weight; weight 0 serves only when the others "
        "fail or rest. A conversation (or a caller's `user`) stays on one deployment while "
        "it is healthy, so providers' prompt caches hit.",
    )
    fallbacks = models.JSONField(
        default=list,
        blank=True,
        help_text="Deployments tried in order when those above fail (connection "
        'error, 429, 5xx) or rest: [{"provider": "azure", "upstream_model": "gpt-4o"}, '
        '{"provider": "openai-eu"}]. A provider is any configured provider name, including '
        "those of NEXEON_PROVIDERS; upstream_model defaults to the one above. Customers pay "
        "this model's prices whichever deployment serves them.",
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["public_id"]
        verbose_name = "catalog model"

    def __str__(self) -> str:
        return self.public_id

    def clean(self) -> None:
        problem = fallbacks_problem(self.fallbacks)
        if problem:
            raise ValidationError({"fallbacks": problem})
        problem = deployments_problem(self.deployments)
        if problem:
            raise ValidationError({"deployments": problem})


def fallbacks_problem(
    value: Any, keys: frozenset[str] = frozenset({"upstream_model"})
) -> str | None:
    """What is wrong with a fallbacks value, or None when it is well formed."""
    optional = " and ".join(sorted(keys))
    if not isinstance(value, list):
        return 'A list of deployments: [{"provider": "...", "upstream_model": "..."}].'
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict) or set(item) - {"provider", *keys}:
            return f"Deployment {number}: an object with provider and, optionally, {optional}."
        provider, upstream = item.get("provider"), item.get("upstream_model", "")
        if not isinstance(provider, str) or not provider.strip():
            return f"Deployment {number} needs a provider name."
        if not isinstance(upstream, str):
            return f"Deployment {number}: upstream_model must be a string."
    return None


def deployments_problem(value: Any) -> str | None:
    """What is wrong with a deployments value, or None when it is well formed."""
    problem = fallbacks_problem(value, frozenset({"upstream_model", "weight"}))
    if problem:
        return problem
    for number, item in enumerate(value, start=1):
        weight = item.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight < 1e6:
            return f"Deployment {number}: weight must be a number from 0 (standby) up."
    return None
