"""Grant credits to a user's organization without Stripe: `make credits EMAIL=... USD=...`."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization, User
from accounts.services import personal_organization_get_or_create
from billing import money, services
from billing.selectors import organization_balance_nanos


class Command(BaseCommand):
    help = (
        "Grant US dollars of credit to the organization of the user with this email (their "
        "own, or --organization SLUG of theirs); booked as a ledger grant."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--usd", required=True, help="US dollars to grant, e.g. 10 or 2.50")
        parser.add_argument("--organization", default=None, help="an organization's slug")
        parser.add_argument(
            "--reference",
            default=None,
            help="run again with the same one (a retry): the credits are not granted again",
        )

    def handle(self, *args, email: str, usd: str, organization, reference, **options) -> None:
        try:
            amount = money.parse_usd(usd, name="--usd")
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if amount <= 0:
            raise CommandError("--usd must be more than 0")
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(
                f"No user {email}: they sign up first (or: manage.py create_api_key {email})"
            )
        target = self._organization(user, organization)
        try:
            entry, granted = services.operator_credits_grant(
                organization=target,
                amount_nanos=money.usd_to_nanos(amount),
                granted_by=f"Granted with manage.py grant_credits by {_who()}",
                reference=f"grant:cli:{reference}" if reference else None,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        balance = money.format_usd(organization_balance_nanos(organization=target))
        done = "Granted" if granted else "Already granted under this reference:"
        self.stdout.write(
            f"{done} {money.format_usd(entry.amount_nanos)} to {target.name!r} "
            f"({target.slug}); balance {balance}"
        )

    def _organization(self, user: User, slug: str | None) -> Organization:
        if slug is None:
            return personal_organization_get_or_create(user=user)
        found = Organization.objects.filter(slug=slug, memberships__user=user).first()
        if found is None:
            raise CommandError(f"{user.email} is not a member of an organization {slug!r}")
        return found


def _who() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in this environment (a container)
        return "the operator"
