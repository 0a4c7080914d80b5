from celery import shared_task

from billing import holds
from usage.pipeline import redis_connection


@shared_task(name="billing.return_expired_holds", ignore_result=True)
def return_expired_holds() -> int:
    """Credit held by calls whose process died goes back to its organization (beat, 10 s)."""
    with redis_connection() as client:
        return holds.reap_expired(client)


@shared_task(name="billing.reconcile_balances", ignore_result=True)
def reconcile_balances() -> dict[str, int]:
    """Every minute: each quiet organization's Redis balance is set to its ledger sum."""
    from billing.reconcile import reconcile_all

    with redis_connection() as client:
        return reconcile_all(client)


@shared_task(name="billing.low_balance_alerts", ignore_result=True)
def low_balance_alerts() -> int:
    """Every 10 minutes: mail owners and admins whose balance fell below LOW_BALANCE_USD."""
    from billing.alerts import low_balance_alerts as send

    return send()
