from django.apps import AppConfig


class MailauthConfig(AppConfig):
    name = "mailauth"
    verbose_name = "Sender authentication and junk"
