"""The Celery app: configuration comes from Django settings (CELERY_* names)."""

import os
import sys

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexeon.settings")

app = Celery("nexeon")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _refuse(message: str) -> None:
    sys.stderr.write(f"nexeon: {message}\n")
    raise SystemExit(2)  # (an Exception in a signal handler would be logged and ignored)


def _refuse_the_in_memory_broker(role: str) -> None:
    """Without REDIS_URL the tasks run inside the web process (eagerly), and a worker or
    beat on the in-memory broker would sit apart from it, silently doing nothing."""
    if app.conf.broker_url.startswith("memory://"):
        _refuse(
            f"celery {role} needs a shared broker: set REDIS_URL (or CELERY_BROKER_URL) "
            "to the Redis the web processes use. Without it, tasks run inside the web "
            f"process and a {role} has nothing to do."
        )


@signals.worker_init.connect
def _check_worker_stores(**kwargs) -> None:
    """A worker drains usage and returns holds: it needs a broker the web processes use
    and Celery can use, and refuses a money Redis that evicts (credit/checks.py), as the
    web processes do."""
    from credit.checks import UnsafeRedis, check_eviction_policy

    _refuse_the_in_memory_broker("worker")
    try:
        check_broker()
        check_eviction_policy()
    except (UnsafeRedis, UnusableBroker) as unsafe:
        _refuse(str(unsafe))


@signals.beat_init.connect
def _check_beat_broker(**kwargs) -> None:
    _refuse_the_in_memory_broker("beat")
    try:
        check_broker()
    except UnusableBroker as unusable:
        _refuse(str(unusable))


class UnusableBroker(RuntimeError):
    """CELERY_BROKER_URL names a server Celery's Redis transport cannot use."""


def check_broker() -> None:
    """Celery's Redis transport speaks to one server (MULTI, its own keys across slots): a
    Redis Cluster cannot be its broker."""
    import redis
    from django.conf import settings

    from credit.connections import ask_cluster

    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return
    try:
        cluster = ask_cluster(url)
    except redis.RedisError:
        return  # unreachable: Celery's own retries and errors say so
    if cluster:
        raise UnusableBroker(
            "CELERY_BROKER_URL points at a Redis Cluster, which Celery's Redis transport "
            "cannot use: set CELERY_BROKER_URL to a standalone Redis (redis://host:6379/0) "
            "or RabbitMQ (amqp://user:password@host:5672//). The money state may stay on "
            "the cluster (REDIS_URL)."
        )
