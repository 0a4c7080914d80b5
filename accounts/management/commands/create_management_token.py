"""Create a REST API management token from the command line, acting in one of the user's
organizations. The token is printed alone on the last line of stdout."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Membership, User
from accounts.services import (
    MANAGEMENT_TOKEN_DEFAULT_DAYS,
    MANAGEMENT_TOKEN_MAX_DAYS,
    management_token_create,
)


class Command(BaseCommand):
    help = (
        "Create a REST API management token for a user, acting in one of their organizations; "
        "prints it alone on the last line."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", default="cli")
        parser.add_argument(
            "--organization",
            metavar="SLUG",
            help="the organization the token acts in (needed when the user has several)",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=MANAGEMENT_TOKEN_DEFAULT_DAYS,
            help=f"days until it expires (1 to {MANAGEMENT_TOKEN_MAX_DAYS})",
        )

    def handle(self, *args, email: str, name: str, organization, days: int, **options) -> None:
        user = User.objects.filter(email=email.lower()).first()
        if user is None:
            raise CommandError(f"no user {email!r}")
        memberships = Membership.objects.select_related("organization").filter(user=user)
        if organization is not None:
            memberships = memberships.filter(organization__slug=organization)
        chosen = list(memberships.order_by("organization__slug")[:2])
        if len(chosen) != 1:
            slugs = ", ".join(
                Membership.objects.filter(user=user)
                .order_by("organization__slug")
                .values_list("organization__slug", flat=True)
            )
            raise CommandError(
                f"choose the organization with --organization SLUG; {user.email} is in: "
                f"{slugs or 'none'}"
            )
        try:
            token, plaintext = management_token_create(
                user=user, organization=chosen[0].organization, name=name, days=days
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Management token {token.name!r} ({token.prefix}…) for {user.email} in "
            f"{token.organization.slug}, expires {token.expires_at:%Y-%m-%d}:"
        )
        self.stdout.write(plaintext)
