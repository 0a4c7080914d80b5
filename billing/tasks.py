from celery import shared_task
from django.db import DatabaseError

from billing import holds, usage_queue


@shared_task(
    name="billing.drain_usage_events",
    ignore_result=True,
    autoretry_for=(DatabaseError, ConnectionError, OSError),
    retry_backoff=True,
    max_retries=None,
)
def drain_usage_events() -> int:
    """Scheduled every second by beat; idempotent, so overlapping or repeated runs are safe."""
    return usage_queue.drain()


@shared_task(name="billing.return_expired_holds", ignore_result=True)
def return_expired_holds() -> int:
    """Credit held by calls whose process died goes back to its organization (beat, 10 s)."""
    with usage_queue.connection() as client:
        return holds.reap_expired(client)
