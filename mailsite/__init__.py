"""Mailsite project package: settings, URLs, the Celery app and the process runtime."""

from .celery import app as celery_app

__all__ = ["celery_app"]
