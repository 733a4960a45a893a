from django.urls import path, re_path

from autoconfig import views

app_name = "autoconfig"
urlpatterns = [
    path(".well-known/autoconfig/mail/config-v1.1.xml", views.thunderbird, name="thunderbird"),
    path("mail/config-v1.1.xml", views.thunderbird),
    # Outlook asks in either spelling (hardening.REDIRECT_EXEMPT keeps these on plain HTTP too).
    re_path(r"^[Aa]utodiscover/[Aa]utodiscover\.xml$", views.autodiscover, name="autodiscover"),
    path(".well-known/mta-sts.txt", views.mta_sts, name="mta-sts"),
    path("mail.mobileconfig", views.apple_profile, name="apple-profile"),
]
