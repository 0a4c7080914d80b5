"""One row per /v1 call (no prompt or answer contents), and hourly/daily rollups of them.

Records are written by the usage pipeline (usage/pipeline.py), never on the hot path; the
request id is unique, so a batch written twice adds nothing.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Endpoint(models.TextChoices):
    CHAT = "chat", "Chat completions"
    EMBEDDINGS = "embeddings", "Embeddings"
    IMAGES = "images", "Images"
    MESSAGES = "messages", "Messages"
    COUNT_TOKENS = "count_tokens", "Count tokens"
    COMPLETIONS = "completions", "Completions (legacy)"
    MODERATIONS = "moderations", "Moderations"
    RESPONSES = "responses", "Responses"


class UsageRecord(models.Model):
    request_id = models.CharField(max_length=64, unique=True)
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="usage_records"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="usage_records",
    )
    endpoint = models.CharField(max_length=16, choices=Endpoint.choices)
    model = models.CharField(max_length=200)
    provider = models.CharField(max_length=64, blank=True)
    status = models.PositiveSmallIntegerField(help_text="The HTTP status the caller got.")
    error_code = models.CharField(max_length=64, blank=True)
    streamed = models.BooleanField(default=False)
    client_disconnected = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cost_nanos = models.BigIntegerField(default=0)
    ttfb_ms = models.FloatField(null=True, blank=True, help_text="Time to the first byte.")
    duration_ms = models.FloatField(default=0, help_text="Time to the last byte.")
    created_at = models.DateTimeField(help_text="When the call arrived.")
    recorded_at = models.DateTimeField(default=timezone.now, help_text="When it was written.")

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["api_key", "created_at"]),
            models.Index(fields=["created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model} {self.status}"


class Period(models.TextChoices):
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


class UsageRollup(models.Model):
    """Totals per organization, key and model for one hour or one day (UTC)."""

    period = models.CharField(max_length=8, choices=Period.choices)
    start = models.DateTimeField()
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="usage_rollups"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.CharField(max_length=200)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost_nanos = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["period", "start", "organization", "api_key", "model"],
                name="usage_rollup_unique",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["organization", "period", "start"])]

    def __str__(self) -> str:
        return f"{self.period} {self.start:%Y-%m-%d %H:00} {self.model}"


class RollupMark(models.Model):
    """How far an organization's usage was rolled up on demand (usage/rollups.py,
    `rollup_pending`): its records written before `through` are in its rollups."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )
    through = models.DateTimeField()

    def __str__(self) -> str:
        return f"rolled up through {self.through:%Y-%m-%d %H:%M:%S}"
