"""The Celery app: configuration comes from Django settings (CELERY_* names)."""

import os
import sys

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")

app = Celery("nexeon")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _check_money_redis(**kwargs) -> None:
    """A worker drains usage and returns holds: it refuses to start on a Redis that evicts
    (credit/checks.py), as the web processes do."""
    from credit.checks import UnsafeRedis, check_eviction_policy

    try:
        check_eviction_policy()
    except UnsafeRedis as unsafe:
        sys.stderr.write(f"nexeon: {unsafe}\n")
        raise SystemExit(2) from None  # (an Exception here would be logged and ignored)
