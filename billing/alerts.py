"""Low-balance emails (Celery beat): the organization's owners and admins hear once when
its balance falls below LOW_BALANCE_USD, and again only after it went back above.

Once even when two runs overlap (two beats during a rolling update): a run claims an
organization by inserting its BalanceAlert (one per organization) in the transaction that
sends the mail; a concurrent insert waits for that transaction and then finds the row, so
only one run mails. A mail that fails rolls its claim back, to be tried on the next run."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from accounts.models import Membership, Organization, Role
from billing.models import BalanceAlert, OrganizationBalance
from billing.money import format_usd, usd_to_nanos


def balances_by_organization() -> dict[int, int]:
    rows = OrganizationBalance.objects.values_list(
        "organization_id", "credits_nanos", "usage_nanos"
    )
    return {organization: credits - usage for organization, credits, usage in rows}


def low_balance_alerts() -> int:
    """Send the mails that are due; returns how many organizations were told."""
    threshold = usd_to_nanos(settings.LOW_BALANCE_USD)
    if threshold <= 0:
        return 0
    balances = balances_by_organization()
    BalanceAlert.objects.filter(
        organization_id__in=[org for org, value in balances.items() if value >= threshold]
    ).delete()
    told = set(BalanceAlert.objects.values_list("organization_id", flat=True))
    sent = 0
    for organization in Organization.objects.filter(
        pk__in=[org for org, value in balances.items() if value < threshold and org not in told]
    ):
        if _tell(organization, balances[organization.pk], threshold):
            sent += 1
    return sent


def _tell(organization: Organization, balance: int, threshold: int) -> bool:
    """Claim the organization's alert and mail its owners and admins, all or nothing;
    False if another run claimed it first."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                BalanceAlert.objects.create(organization=organization, balance_nanos=balance)
        except IntegrityError:
            return False
        recipients = list(
            Membership.objects.filter(
                organization=organization, role__in=[Role.OWNER, Role.ADMIN]
            ).values_list("user__email", flat=True)
        )
        if recipients:
            send_mail(
                f"NeXeonAI: {organization.name}'s balance is {format_usd(balance)}",
                f"The credit balance of {organization.name} is {format_usd(balance)}, below "
                f"{format_usd(threshold)}. API calls are refused with 402 once it cannot "
                "cover a call. Add credits on the dashboard's Billing page.",
                settings.DEFAULT_FROM_EMAIL,
                recipients,
            )
    return True
