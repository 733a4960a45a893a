from django import forms
from django.contrib import admin

from mailauth import sender_rules
from mailauth.models import MxTally, SenderRule


class SenderRuleForm(forms.ModelForm):
    class Meta:
        model = SenderRule
        fields = ["account", "sender", "allow"]

    def clean_sender(self) -> str:
        try:
            return sender_rules.normalise(self.cleaned_data["sender"])
        except sender_rules.InvalidSender as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(SenderRule)
class SenderRuleAdmin(admin.ModelAdmin):
    """Allow and block lists: each account's own; the admin can see and correct them (through the store's
    actions, as the webmail's settings do)."""

    form = SenderRuleForm
    list_display = ["account", "sender", "allow"]
    list_filter = ["allow"]
    search_fields = ["account__address", "sender"]
    autocomplete_fields = ["account"]

    def save_model(self, request, obj: SenderRule, form, change: bool) -> None:
        replacing = SenderRule.objects.get(pk=obj.pk) if change else None
        saved = sender_rules.set_sender_rule(obj.account_id, obj.sender, allow=obj.allow, replacing=replacing)
        obj.pk = saved.pk

    def delete_model(self, request, obj: SenderRule) -> None:
        sender_rules.remove_sender_rule(obj.account_id, obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for rule in queryset:
            sender_rules.remove_sender_rule(rule.account_id, rule.pk)


@admin.register(MxTally)
class MxTallyAdmin(admin.ModelAdmin):
    """Per domain and day: mail the MX delivered, filed into Junk, and refused (authentication or spam)."""

    list_display = ["day", "domain", "delivered", "junked", "refused"]
    list_filter = ["day"]
    search_fields = ["domain"]
    readonly_fields = ["day", "domain", "delivered", "junked", "refused"]

    def has_add_permission(self, request) -> bool:
        return False
