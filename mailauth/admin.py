from django.contrib import admin

from mailauth.models import SenderRule


@admin.register(SenderRule)
class SenderRuleAdmin(admin.ModelAdmin):
    """Allow and block lists: each account's own; the admin can see and correct them."""

    list_display = ["account", "sender", "allow"]
    list_filter = ["allow"]
    search_fields = ["account__address", "sender"]
    autocomplete_fields = ["account"]
