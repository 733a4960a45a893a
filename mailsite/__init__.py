"""Mailsite project package: settings, URLs, the Celery app (`mailsite.celery`, imported by the processes that
send or run tasks, not by every listener) and the process runtime."""
