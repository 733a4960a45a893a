from django.contrib import admin

from mailauth.models import MxTally, SenderRule


@admin.register(SenderRule)
class SenderRuleAdmin(admin.ModelAdmin):
    """Allow and block lists: each account's own; the admin can see and correct them."""

    list_display = ["account", "sender", "allow"]
    list_filter = ["allow"]
    search_fields = ["account__address", "sender"]
    autocomplete_fields = ["account"]


@admin.register(MxTally)
class MxTallyAdmin(admin.ModelAdmin):
    """Per domain and day: mail the MX delivered, filed into Junk, and refused (authentication or spam)."""

    list_display = ["day", "domain", "delivered", "junked", "refused"]
    list_filter = ["day"]
    search_fields = ["domain"]
    readonly_fields = ["day", "domain", "delivered", "junked", "refused"]

    def has_add_permission(self, request) -> bool:
        return False
