"""Periodic work of this app's concern: keeping the ACME certificate fresh."""

from __future__ import annotations

from mailsite import acme
from mailsite.celery import app


@app.task(name="mailsite.acme.renew", ignore_result=True)
def renew() -> bool:
    """Hourly from beat when MAILSITE_ACME is on: a new certificate once the current one is due."""
    return acme.obtain_if_due()
