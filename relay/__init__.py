"""Outbound relay: Celery tasks that deliver queued mail to remote MX hosts."""
