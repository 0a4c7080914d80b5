"""Checking the credit store against the ledger (Celery beat, every minute).

For an organization the store holds `available + held + unbooked` (credit/store.py): the
ledger's balance plus the usage the ledger has booked but the drain has not yet
acknowledged, which is between 0 and `unbooked`. So, read while the ledger does not move:

* below the ledger's balance: the store charged usage that was never booked (lost on the
  way, or a dead letter). Reported (an error log, nexeon_balance_discrepancies_total) and
  never "corrected": refunding it would hide the loss and give the usage away.
* above the ledger's balance by more than `unbooked`: the ledger booked usage the store
  never charged (booked directly while Redis was unreachable, GATEWAY_REDIS_FAILURE=local).
  The store is charged the difference (compare-and-set, so a call settling meanwhile is
  never overwritten).
* credits the store missed (Redis was unreachable when they were booked) are synced first.
"""

from __future__ import annotations

import logging

from billing.selectors import ledger_figures
from credit.records import LedgerFigures
from credit.store import CreditStore
from nexeon import counters

logger = logging.getLogger(__name__)


def reconcile_organization(store: CreditStore, organization_id: int) -> str:
    """'equal', 'credits synced', 'credits ahead', 'charged', 'usage missing', 'busy' or
    'not loaded'."""
    before = ledger_figures(organization_id)
    state = store.credit_state(organization_id)
    after = ledger_figures(organization_id)
    if state is None:
        return "not loaded"
    if before != after:
        return "busy"  # a booking landed while reading: look again next time
    if after.credits_seq != state.credits_seq:
        if after.credits_seq > state.credits_seq:
            store.sync_credits(organization_id, after.credits, after.credits_seq)
            logger.warning("credits of organization %s synced to the ledger", organization_id)
            counters.increment("nexeon_balance_discrepancies_total", kind="credits_missed")
            return "credits synced"
        return _report(organization_id, "the store's credits are newer than the ledger's", after)
    excess = state.total - (after.credits - after.usage)
    if excess < 0:
        logger.error(
            "organization %s: the credit store charged %s nano-dollars of usage the ledger "
            "never booked (lost usage or dead letters); left as it is",
            organization_id,
            -excess,
        )
        counters.increment("nexeon_balance_discrepancies_total", kind="usage_not_booked")
        return "usage missing"
    if excess > state.unbooked:
        amount = excess - state.unbooked
        if store.charge_ledger_only(organization_id, state.total, amount) != 1:
            return "busy"
        logger.warning(
            "organization %s: %s nano-dollars of usage booked without the credit store "
            "charged to its balance",
            organization_id,
            amount,
        )
        counters.increment("nexeon_balance_discrepancies_total", kind="usage_not_charged")
        return "charged"
    return "equal"


def _report(organization_id: int, problem: str, figures: LedgerFigures) -> str:
    logger.error("organization %s: %s (ledger: %s)", organization_id, problem, figures)
    counters.increment("nexeon_balance_discrepancies_total", kind="credits_ahead")
    return "credits ahead"


def reconcile_all(store: CreditStore) -> dict[str, int]:
    outcome: dict[str, int] = {}
    for organization_id in store.organizations():
        result = reconcile_organization(store, organization_id)
        outcome[result] = outcome.get(result, 0) + 1
    return outcome
