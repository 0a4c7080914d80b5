"""Tasks run on a real Celery worker over Redis, against the test database."""

import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.tasks import clear_expired_sessions
from tests.support import PROJECT_DIR, manage_env, test_database_url


@pytest.fixture
def celery_worker(transactional_db, redis_client):
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "nexeon", "worker", "--pool", "solo"),
            *("--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"),
        ],
        cwd=PROJECT_DIR,
        env=manage_env(DATABASE_URL=test_database_url()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield worker
    worker.terminate()
    output, _ = worker.communicate(timeout=20)
    print(output)


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
