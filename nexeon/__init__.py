"""The project package: settings, URLs, the ASGI entry point, the Celery app, the probes,
and the plumbing the apps share (environment reading, counters, bulk inserts, the running
loop). Celery's app is imported with Django so that @shared_task binds to it."""

from nexeon.celery import app as celery_app

__all__ = ("celery_app",)
