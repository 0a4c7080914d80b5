# Celery's app is imported with Django so that @shared_task binds to it.
from nexeon.celery import app as celery_app

__all__ = ("celery_app",)
