"""Provision a customer from the command line: user, organization, credits and one key.

The key is printed alone on the last line of stdout, so scripts can take it with `tail -1`.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from accounts import services as account_services
from billing import money
from billing import services as billing_services
from billing.selectors import organization_balance_nanos


def _usd(value: str) -> Decimal:
    try:
        amount = money.parse_usd(value, name="--credits")
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if amount < 0:
        raise CommandError("--credits must be zero or more")
    return amount


class Command(BaseCommand):
    help = "Create (if missing) a user and their organization, add credits, print a new API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--credits", type=_usd, default=Decimal(0), help="US dollars to add")
        parser.add_argument("--rpm", type=int, default=None, help="requests per minute limit")
        parser.add_argument("--tpm", type=int, default=None, help="tokens per minute limit")
        parser.add_argument("--name", default="default", help="the key's name")
        parser.add_argument(
            "--reference",
            default=None,
            help="the grant's ledger reference: run again with the same one (a retry), the "
            "credits are not granted again",
        )
        parser.add_argument(
            "--plan",
            choices=sorted(settings.RATE_LIMIT_PLANS),
            default=None,
            help="put the organization on this rate-limit plan (RATE_LIMIT_PLANS)",
        )

    def handle(
        self,
        *args,
        email: str,
        credits: Decimal,
        rpm,
        tpm,
        name: str,
        plan=None,
        reference=None,
        **options,
    ):
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not an email address") from None
        for flag, value in (("--rpm", rpm), ("--tpm", tpm)):
            if value is not None and value <= 0:
                raise CommandError(f"{flag} must be a positive number")

        with transaction.atomic():
            user, created = account_services.user_get_or_create(email=email)
            organization = account_services.personal_organization_get_or_create(user=user)
            if plan is not None:
                account_services.organization_limits_update(
                    organization=organization,
                    plan=plan,
                    rpm_limit=organization.rpm_limit,
                    tpm_limit=organization.tpm_limit,
                )
            amount_nanos = money.usd_to_nanos(credits)
            granted = True
            if amount_nanos:
                try:
                    _, granted = billing_services.credits_grant(
                        organization=organization,
                        amount_nanos=amount_nanos,
                        reference=f"grant:cli:{reference or uuid.uuid4()}",
                        description="Granted with manage.py create_api_key",
                    )
                except ValueError as exc:  # the reference was used for another grant
                    raise CommandError(str(exc)) from None
            new_key = account_services.api_key_create(
                organization=organization, name=name, created_by=user, rpm_limit=rpm, tpm_limit=tpm
            )

        if not granted:
            self.stdout.write(f"Credits already granted under reference {reference!r}.")
        balance = organization_balance_nanos(organization=organization)
        self.stdout.write(
            f"{'Created' if created else 'Found'} user {user.email}; "
            f"organization {organization.slug!r} (plan {organization.plan}); "
            f"balance {money.format_usd(balance)}; "
            f"key {name!r} ({new_key.api_key.prefix}…):"
        )
        self.stdout.write(new_key.plaintext)
