"""The billing app; its ready() has `manage.py migrate` also move the credit store's
unsharded key names to the sharded ones (billing/legacy_keys.py)."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing and credits"

    def ready(self) -> None:
        from billing.legacy_keys import after_migrate

        post_migrate.connect(after_migrate, sender=self)
