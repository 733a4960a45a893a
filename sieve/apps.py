from django.apps import AppConfig


class SieveConfig(AppConfig):
    name = "sieve"
    verbose_name = "Sieve filters"
    default_auto_field = "django.db.models.BigAutoField"
