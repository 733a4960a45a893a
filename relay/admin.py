"""Django admin: the outbound queue (retry now, hold, release, delete with a bounce), DKIM keys with the DNS
records to publish, and the MTA-STS policies the relay cached."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from autoconfig.records import client_records
from mailboxes.actions import outbound
from relay import dkim
from relay.models import Attempt, DkimKey, MtaStsPolicy, OutboundRecipient

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ["started", "finished", "host", "code", "reply", "outcome"]
    readonly_fields = [str(name) for name in fields]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(OutboundRecipient)
class QueueAdmin(admin.ModelAdmin):
    """The queue: one row per recipient, since each recipient has its own state and reply."""

    list_display = ["address", "sender", "subject", "state", "attempts", "next_attempt", "last_reply_short"]
    list_filter = ["state", "domain"]
    search_fields = ["address", "message__sender", "message__subject"]
    list_select_related = ["message"]
    ordering = ["-message__created", "address"]
    actions = ["retry_now", "hold", "release", "delete_with_bounce"]
    inlines = [AttemptInline]
    fields = [
        "address",
        "sender",
        "subject",
        "queued",
        "state",
        "attempts",
        "next_attempt",
        "claimed_until",
        "last_host",
        "last_code",
        "last_reply",
        "status",
        "delay_warned",
    ]
    readonly_fields = [str(name) for name in fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutboundRecipient]:
        return super().get_queryset(request).defer("message__raw")

    @admin.display(description="sender", ordering="message__sender")
    def sender(self, row: OutboundRecipient) -> str:
        return row.message.sender or "<> (bounce)"

    @admin.display(description="subject")
    def subject(self, row: OutboundRecipient) -> str:
        return row.message.subject

    @admin.display(description="queued", ordering="message__created")
    def queued(self, row: OutboundRecipient) -> object:
        return row.message.created

    @admin.display(description="last reply")
    def last_reply_short(self, row: OutboundRecipient) -> str:
        text = f"{row.last_code or ''} {row.last_reply}".strip()
        return text[:120]

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        # Deleting goes through the queue so the sender hears about it; the generic bulk delete would not.
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Retry now")
    def retry_now(self, request: HttpRequest, rows: QuerySet[OutboundRecipient]) -> None:
        count = outbound.retry_now(list(rows.values_list("pk", flat=True)))
        self.message_user(request, f"{count} recipient(s) will be tried now.")

    @admin.action(description="Hold")
    def hold(self, request: HttpRequest, rows: QuerySet[OutboundRecipient]) -> None:
        count = outbound.hold(list(rows.values_list("pk", flat=True)))
        self.message_user(request, f"{count} recipient(s) held.")

    @admin.action(description="Release")
    def release(self, request: HttpRequest, rows: QuerySet[OutboundRecipient]) -> None:
        count = outbound.release(list(rows.values_list("pk", flat=True)))
        self.message_user(request, f"{count} recipient(s) released.")

    @admin.action(description="Delete (bounces to the sender)")
    def delete_with_bounce(self, request: HttpRequest, rows: QuerySet[OutboundRecipient]) -> None:
        count = outbound.delete(list(rows.values_list("pk", flat=True)))
        self.message_user(request, f"{count} recipient(s) deleted.", messages.WARNING)

    def delete_model(self, request: HttpRequest, obj: OutboundRecipient) -> None:
        outbound.delete([obj.pk])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboundRecipient | None = None) -> bool:
        return False


class DkimKeyForm(forms.ModelForm):
    class Meta:
        model = DkimKey
        fields = ["domain"]


@admin.register(DkimKey)
class DkimKeyAdmin(admin.ModelAdmin):
    """Keys are generated on the first outbound message of a domain, or here ahead of time."""

    form = DkimKeyForm
    list_display = ["domain", "selector", "created"]
    readonly_fields = ["selector", "created", "dns_records"]

    def get_fields(self, request: HttpRequest, obj: DkimKey | None = None) -> _FieldGroups:
        return ["domain", "selector", "created", "dns_records"] if obj else ["domain"]

    def get_readonly_fields(self, request: HttpRequest, obj: DkimKey | None = None) -> list[str]:
        return ["domain", *self.readonly_fields] if obj else []

    @admin.display(description="DNS records to publish")
    def dns_records(self, key: DkimKey) -> str:
        domain = key.domain.name
        rows = [
            (what, name, "TXT", value)
            for what, (name, value) in [
                ("DKIM", dkim.txt_record(key)),
                ("SPF", dkim.spf_record(domain)),
                ("DMARC", dkim.dmarc_record(domain)),
            ]
        ]
        rows += client_records(domain)  # SRV, autoconfig, MTA-STS and TLS-RPT (autoconfig/records.py)
        return format_html(
            "<table><tr><th>what</th><th>name</th><th>type</th><th>value</th></tr>{}</table>",
            format_html_join(
                "",
                '<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td><code style="word-break:break-all">'
                "{}</code></td></tr>",
                rows,
            ),
        )

    def save_model(self, request: HttpRequest, obj: DkimKey, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.pk = dkim.key_for(obj.domain).pk

    def has_change_permission(self, request: HttpRequest, obj: DkimKey | None = None) -> bool:
        return obj is None


@admin.register(MtaStsPolicy)
class MtaStsPolicyAdmin(admin.ModelAdmin):
    """Recipient domains' MTA-STS policies as the relay cached them. Forgetting one makes the next session to
    the domain fetch it again (a fixed policy takes effect without waiting for its max_age)."""

    list_display = ["domain", "mode", "mx_patterns", "policy_id", "fetched", "expires"]
    list_filter = ["mode"]
    search_fields = ["domain"]
    ordering = ["domain"]
    actions = ["forget"]
    fields = ["domain", "mode", "mx", "policy_id", "max_age", "fetched", "expires"]
    readonly_fields = [str(name) for name in fields]

    @admin.display(description="MX hosts")
    def mx_patterns(self, policy: MtaStsPolicy) -> str:
        return ", ".join(policy.mx)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # removal goes through the store's action
        return actions

    @admin.action(description="Forget (fetch again on the next delivery)")
    def forget(self, request: HttpRequest, policies: QuerySet[MtaStsPolicy]) -> None:
        count = outbound.forget_policies(list(policies.values_list("pk", flat=True)))
        self.message_user(request, f"{count} policy(ies) forgotten.")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: MtaStsPolicy | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: MtaStsPolicy | None = None) -> bool:
        return False
