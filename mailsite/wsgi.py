"""WSGI entry point for deployments that prefer a WSGI server."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
application = get_wsgi_application()
