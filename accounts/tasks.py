"""Accounts' periodic Celery tasks (CELERY_BEAT_SCHEDULE): clearing expired sessions and
revoking expired API keys."""

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task(name="accounts.clear_expired_sessions", ignore_result=True)
def clear_expired_sessions() -> int:
    """Periodic (Celery beat): drop expired dashboard sessions; safe to run twice."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


@shared_task(name="accounts.expire_keys", ignore_result=True)
def expire_keys() -> int:
    """Hourly: keys past their expiry are revoked (and leave every gateway cache), so the
    dashboard and the API show them as such; the gateway refuses them already."""
    from accounts.models import ApiKey
    from accounts.services import api_key_revoke

    expired = ApiKey.objects.filter(revoked_at__isnull=True, expires_at__lte=timezone.now())
    count = 0
    for api_key in expired:
        api_key_revoke(api_key=api_key)
        count += 1
    return count
