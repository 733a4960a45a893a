from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from mailsite import acme

# Each app's admin.py, loaded here rather than at start-up (SimpleAdminConfig): only the web serves the admin.
admin.autodiscover()

urlpatterns = [
    path(".well-known/acme-challenge/<str:token>", acme.challenge_response),
    # Admins sign in like everyone else: throttled, with the second factor (webmail/views/auth.py).
    path("admin/login/", RedirectView.as_view(pattern_name="webmail:login", query_string=True)),
    path("admin/", admin.site.urls),
    path("", include("ops.urls")),  # health, readiness and metrics endpoints (ops/)
    path("", include("autoconfig.urls")),  # mail client auto-configuration, MTA-STS policy (autoconfig/)
    path("", include("webmail.urls")),
]

# A database outage answers 503 with a clear message (and the text being written), not a bare 500.
handler500 = "webmail.views.errors.server_error"
