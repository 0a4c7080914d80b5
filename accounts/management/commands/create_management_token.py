from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import management_token_create


class Command(BaseCommand):
    help = "Create a REST API management token for a user; prints it alone on the last line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", default="cli")

    def handle(self, *args, email: str, name: str, **options) -> None:
        user = User.objects.filter(email=email.lower()).first()
        if user is None:
            raise CommandError(f"no user {email!r}")
        token, plaintext = management_token_create(user=user, name=name)
        self.stdout.write(f"Management token {token.name!r} ({token.prefix}…) for {user.email}:")
        self.stdout.write(plaintext)
