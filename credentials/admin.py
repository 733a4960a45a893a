"""Admin views of credentials: see who has two-factor sign-in and app passwords; reset or revoke them.

Nothing here shows a secret. Resets and revocations go through `credentials.actions`, so a revoked app
password ends its sessions as it does from the webmail or the command line.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from credentials import actions
from credentials.models import AppPassword, Passkey, SignIn, TotpDevice


@admin.register(TotpDevice)
class TotpDeviceAdmin(admin.ModelAdmin):
    list_display = ["account", "confirmed"]
    search_fields = ["account__address"]
    fields = ["account", "confirmed"]
    readonly_fields = [str(name) for name in fields]
    actions = ["reset"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # the reset action removes the recovery codes too

    @admin.action(description="Reset two-factor sign-in (the user can sign in with the password alone)")
    def reset(self, request: HttpRequest, queryset: QuerySet[TotpDevice]) -> None:
        for device in queryset.select_related("account"):
            actions.disable_totp(device.account)
        self.message_user(request, f"Two-factor sign-in reset for {len(queryset)} account(s).")


@admin.register(Passkey)
class PasskeyAdmin(admin.ModelAdmin):
    """Deleting a user's passkeys (with the TOTP reset above) lets them sign in with the password alone."""

    list_display = ["name", "account", "created", "last_used"]
    search_fields = ["account__address", "name"]
    fields = [str(name) for name in list_display]
    readonly_fields = [str(name) for name in list_display]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # registered by the owner's browser


@admin.register(AppPassword)
class AppPasswordAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "protocols", "created", "last_used", "last_used_ip"]
    search_fields = ["account__address", "name"]
    fields = [str(name) for name in list_display]
    readonly_fields = [str(name) for name in list_display]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created by the owner (webmail) or `manage.py apppassword`, so the secret is shown once

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Revoke (ends the sessions using them)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AppPassword]) -> None:
        for row in list(queryset.select_related("account")):
            actions.revoke_app_password(row.account, row.name)
        self.message_user(request, "Revoked.")


@admin.register(SignIn)
class SignInAdmin(admin.ModelAdmin):
    list_display = ["created", "account", "protocol", "remote_ip", "method"]
    list_filter = ["protocol"]
    search_fields = ["account__address", "remote_ip"]
    readonly_fields = [str(name) for name in list_display]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
