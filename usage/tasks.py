"""Periodic work of the usage pipeline (Celery beat; see CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from usage import pipeline
from usage.models import Period
from usage.rollups import rollup


@shared_task(
    name="usage.drain_events",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError, ConnectionError, OSError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=None,
)
def drain_events() -> int:
    """Every second; idempotent, so overlapping, repeated or redelivered runs are safe."""
    return pipeline.drain()


@shared_task(name="usage.rollup_hours", ignore_result=True, autoretry_for=(DatabaseError,))
def rollup_hours() -> int:
    """This hour and the last (late records still count)."""
    return rollup(Period.HOUR, since=timezone.now() - timedelta(hours=1))


@shared_task(name="usage.rollup_days", ignore_result=True, autoretry_for=(DatabaseError,))
def rollup_days() -> int:
    """Today and yesterday (UTC)."""
    return rollup(Period.DAY, since=timezone.now() - timedelta(days=1))
