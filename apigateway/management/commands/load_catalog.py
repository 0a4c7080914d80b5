"""`manage.py load_catalog [--force]`: the default models of apigateway/catalog.json into
the database (the missing ones; with --force, existing rows reset too)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apigateway.catalog import catalog_load_defaults


class Command(BaseCommand):
    help = "Add the default models from apigateway/catalog.json that the database lacks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="also reset existing rows to the defaults"
        )

    def handle(self, *args: Any, force: bool, **options: Any) -> None:
        created, updated = catalog_load_defaults(force=force)
        self.stdout.write(f"catalog: {created} models added, {updated} reset")
