"""Billing's periodic Celery tasks (CELERY_BEAT_SCHEDULE): credit held by dead calls
returned, the credit store reconciled with the ledger, low-balance emails."""

from celery import shared_task

from credit.stores import current as credit_store


@shared_task(name="billing.return_expired_holds", ignore_result=True)
def return_expired_holds() -> int:
    """Credit held by calls whose process died goes back to its organization (beat, 10 s)."""
    return credit_store().reap()


@shared_task(name="billing.reconcile_balances", ignore_result=True)
def reconcile_balances() -> dict[str, int]:
    """Every minute: each organization's credit in the store checked against the ledger."""
    from billing.reconcile import reconcile_all

    return reconcile_all(credit_store())


@shared_task(name="billing.low_balance_alerts", ignore_result=True)
def low_balance_alerts() -> int:
    """Every 10 minutes: mail owners and admins whose balance fell below LOW_BALANCE_USD."""
    from billing.alerts import low_balance_alerts as send

    return send()
