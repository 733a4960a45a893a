"""Django admin for domains, accounts, aliases, folders and (read-only) messages."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from mailboxes import actions
from mailboxes.models import Account, Alias, Domain, Mailbox, Message
from mailcore.mime import MimePart


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["name", "active", "account_count", "created"]
    list_filter = ["active"]
    search_fields = ["name"]

    @admin.display(description="accounts")
    def account_count(self, domain: Domain) -> int:
        return domain.accounts.count()


class AccountCreationForm(forms.ModelForm):
    password = forms.CharField(widget=forms.PasswordInput, strip=False)

    class Meta:
        model = Account
        fields = ["address", "display_name", "quota_bytes", "is_staff"]

    def clean_address(self) -> str:
        address = self.cleaned_data["address"].strip().lower()
        local, _, domain = address.rpartition("@")
        if not local or not Domain.objects.filter(name=domain).exists():
            raise forms.ValidationError("Use a full address in one of the domains configured here.")
        if Account.objects.filter(address=address).exists():
            raise forms.ValidationError("An account with this address exists already.")
        return address

    def save(self, commit: bool = True) -> Account:
        # Accounts are created by the service, which also makes the standard folders.
        data = self.cleaned_data
        return actions.create_account(
            data["address"],
            data["password"],
            display_name=data["display_name"],
            quota_bytes=data["quota_bytes"],
            is_staff=data["is_staff"],
        )

    def save_m2m(self) -> None:
        pass


@admin.register(Account)
class AccountAdmin(UserAdmin):
    add_form = AccountCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ["address", "display_name", "usage", "is_active", "is_staff", "created"]
    list_filter = ["is_active", "is_staff", "domain"]
    search_fields = ["address", "display_name"]
    ordering = ["address"]
    readonly_fields = ["domain", "local_part", "usage", "created", "last_login"]
    fieldsets = [
        (None, {"fields": ["address", "password", "display_name", "domain", "local_part"]}),
        ("Storage", {"fields": ["quota_bytes", "usage"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("History", {"fields": ["created", "last_login"]}),
    ]
    add_fieldsets = [(None, {"fields": ["address", "password", "display_name", "quota_bytes", "is_staff"]})]
    filter_horizontal = ["groups", "user_permissions"]

    def get_readonly_fields(self, request: HttpRequest, obj: Account | None = None) -> list[str]:
        # The address is the login and the key of the stored mail: it is fixed once the account exists.
        return [*self.readonly_fields, "address"] if obj else []

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
            kwargs["fields"] = ["address", "password", "display_name", "quota_bytes", "is_staff"]
        return super().get_form(request, obj, **kwargs)

    @admin.display(description="used / quota")
    def usage(self, account: Account) -> str:
        used = filesizeformat(account.used_bytes)
        if not account.quota_bytes:
            return f"{used} (no limit)"
        percent = 100 * account.used_bytes / account.quota_bytes
        return f"{used} of {filesizeformat(account.quota_bytes)} ({percent:.0f}%)"


@admin.register(Alias)
class AliasAdmin(admin.ModelAdmin):
    list_display = ["__str__", "destinations", "active"]
    list_filter = ["active", "domain"]
    search_fields = ["local_part", "domain__name", "destinations"]


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "role", "subscribed", "message_count", "uidvalidity", "uidnext"]
    list_filter = ["role", "subscribed"]
    search_fields = ["name", "account__address"]
    readonly_fields = ["account", "role", "uidvalidity", "uidnext", "highestmodseq", "created"]
    fields = ["account", "name", "role", "subscribed", "uidvalidity", "uidnext", "highestmodseq", "created"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Mailbox]:
        return super().get_queryset(request).select_related("account")

    @admin.display(description="messages")
    def message_count(self, mailbox: Mailbox) -> int:
        return mailbox.messages.count()

    def save_model(self, request: HttpRequest, obj: Mailbox, form, change: bool) -> None:
        if not change:
            actions.create_mailbox(obj.account, obj.name)
            return
        previous = Mailbox.objects.get(pk=obj.pk)
        if previous.name != obj.name:
            actions.rename_mailbox(obj.account, obj.pk, obj.name)
        if previous.subscribed != obj.subscribed:
            actions.set_subscribed(obj.account, obj.name, obj.subscribed)

    def delete_model(self, request: HttpRequest, obj: Mailbox) -> None:
        try:
            actions.delete_mailbox(obj.account, obj.pk)
        except actions.ServiceError as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # folders are made by their owners; standard ones come with the account


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Read-only: mail is changed by its owner through the protocols and the webmail."""

    list_display = ["subject", "from_address", "account", "mailbox", "uid", "size", "internal_date"]
    list_filter = ["seen", "flagged", "has_attachments"]
    search_fields = [
        "subject",
        "from_address",
        "from_name",
        "to_addresses",
        "cc_addresses",
        "account__address",
    ]
    list_select_related = ["account", "mailbox"]
    date_hierarchy = "internal_date"
    fields = [
        "account",
        "mailbox",
        "uid",
        "subject",
        "from_name",
        "from_address",
        "to_addresses",
        "cc_addresses",
        "sent_date",
        "internal_date",
        "message_id",
        "in_reply_to",
        "references",
        "thread_id",
        "size",
        "has_attachments",
        "seen",
        "answered",
        "flagged",
        "deleted",
        "draft",
        "keywords",
        "headers",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return (
            super()
            .get_queryset(request)
            .defer("search_text", "envelope", "structure", "imap_envelope", "imap_body", "imap_bodystructure")
        )

    @admin.display(description="raw header")
    def headers(self, message: Message) -> str:
        end = MimePart.from_json(message.structure).header_end
        return bytes(message.body.raw[:end]).decode("utf-8", "replace")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)
