from django.core.management.base import BaseCommand

from apigateway.catalog import catalog_load_defaults


class Command(BaseCommand):
    help = "Add the default models from apigateway/catalog.json that the database lacks."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="also reset existing rows to the defaults"
        )

    def handle(self, *args, force: bool, **options) -> None:
        created, updated = catalog_load_defaults(force=force)
        self.stdout.write(f"catalog: {created} models added, {updated} reset")
