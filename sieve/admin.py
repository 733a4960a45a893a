"""Admin: see users' scripts and disable them; the before-scripts run ahead of every user's (validated on save)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from sieve import scripts
from sieve.models import BeforeScript, SieveScript, VacationReply


@admin.register(SieveScript)
class SieveScriptAdmin(admin.ModelAdmin):
    list_display = ["account", "name", "active", "updated"]
    list_filter = ["active"]
    search_fields = ["account__address", "name"]
    readonly_fields = ["account", "name", "content", "active", "updated"]
    actions = ["disable"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # users write their scripts (webmail, ManageSieve); admins only look and disable

    def has_change_permission(self, request: HttpRequest, obj: SieveScript | None = None) -> bool:
        return False

    @admin.action(description="Disable the selected scripts (they are kept, no longer run)", permissions=["view"])
    def disable(self, request: HttpRequest, queryset: QuerySet[SieveScript]) -> None:
        count = scripts.disable(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} script(s) disabled.", messages.SUCCESS)


class BeforeScriptForm(forms.ModelForm):
    class Meta:
        model = BeforeScript
        fields = ["name", "domain", "content", "enabled"]

    def clean_content(self) -> str:
        content = self.cleaned_data["content"]
        try:
            scripts.check(content)
        except scripts.ScriptError as exc:
            raise forms.ValidationError(str(exc)) from None
        return content


@admin.register(BeforeScript)
class BeforeScriptAdmin(admin.ModelAdmin):
    form = BeforeScriptForm
    list_display = ["name", "domain", "enabled", "updated"]
    list_filter = ["enabled"]


@admin.register(VacationReply)
class VacationReplyAdmin(admin.ModelAdmin):
    list_display = ["account", "sender", "sent", "quiet_until"]
    search_fields = ["account__address", "sender"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: VacationReply | None = None) -> bool:
        return False
