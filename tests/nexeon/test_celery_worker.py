"""Tasks run on a real Celery worker over Redis, against the test database."""

import time
from datetime import timedelta

from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.tasks import clear_expired_sessions


def test_a_worker_runs_the_session_cleanup_task(celery_worker):
    now = timezone.now()
    Session.objects.create(session_key="old", session_data="", expire_date=now - timedelta(1))
    Session.objects.create(session_key="live", session_data="", expire_date=now + timedelta(1))

    clear_expired_sessions.delay()

    deadline = time.monotonic() + 30
    while Session.objects.filter(session_key="old").exists():
        assert celery_worker.poll() is None, "the worker died"
        assert time.monotonic() < deadline, "the worker did not run the task within 30 s"
        time.sleep(0.2)
    assert list(Session.objects.values_list("session_key", flat=True)) == ["live"]
