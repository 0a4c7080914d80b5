"""The accounts app; its ready() connects the signal that tombstones a deleted API key in
the gateway's cache."""

from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_delete


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and API keys"

    def ready(self) -> None:
        from accounts.models import ApiKey

        # A key deleted by any road (the admin, a queryset, its organization's deletion)
        # must stop working on every gateway worker: its cached copy is replaced by a
        # tombstone once the deletion commits.
        post_delete.connect(_key_deleted, sender=ApiKey, dispatch_uid="api-key-tombstone")


def _key_deleted(sender, instance, **kwargs) -> None:
    from accounts import key_cache

    digest = instance.digest
    transaction.on_commit(lambda: key_cache.revoked(digest))
