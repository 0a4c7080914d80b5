"""The usage app: per-call usage records and their rollups, the usage pipeline that writes
them, the usage page and its live feed, and the operator metrics."""

from django.apps import AppConfig


class UsageConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "usage"
