"""Move money state kept under the key names of versions before the credit shards to the
sharded names (credit/legacy.py), on a single Redis. `manage.py migrate` runs it too."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing.legacy_keys import migrate_credit_keys


class Command(BaseCommand):
    help = "Move Redis money state from the pre-shard key names to the sharded ones."

    def handle(self, *args, **options) -> None:
        try:
            moved = migrate_credit_keys()
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Moved: {moved}")
