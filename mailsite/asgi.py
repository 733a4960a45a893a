"""ASGI entry point: `uvicorn mailsite.asgi:application` serves the webmail and the admin."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
application = get_asgi_application()
