from celery import shared_task

from billing import holds
from usage.pipeline import connection


@shared_task(name="billing.return_expired_holds", ignore_result=True)
def return_expired_holds() -> int:
    """Credit held by calls whose process died goes back to its organization (beat, 10 s)."""
    with connection() as client:
        return holds.reap_expired(client)
