"""The apigateway app's configuration: a saved or deleted catalog row tells every worker,
once its transaction commits, to read the catalog again (catalog.announce_change)."""

from typing import Any

from django.apps import AppConfig


class ApiGatewayConfig(AppConfig):
    name = "apigateway"
    verbose_name = "API gateway"

    def ready(self) -> None:
        from django.db import transaction
        from django.db.models.signals import post_delete, post_save

        from apigateway.catalog import announce_change
        from apigateway.models import CatalogModel

        def changed(**_: Any) -> None:
            transaction.on_commit(announce_change)  # workers must read the committed rows

        post_save.connect(changed, sender=CatalogModel, weak=False, dispatch_uid="catalog-save")
        post_delete.connect(changed, sender=CatalogModel, weak=False, dispatch_uid="catalog-del")
