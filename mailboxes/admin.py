"""Django admin for domains, accounts, aliases, folders and (read-only) messages."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db.models import Exists, Model, OuterRef, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from mailboxes import actions
from mailboxes.models import Account, Alias, Domain, Mailbox, Message, RecycledMessage, Subscription
from mailcore.idn import ascii_domain, valid_domain
from mailcore.mime import MimePart
from webmail.addresses import valid_address

audit = logging.getLogger("mailsite.audit")  # who looked at whose mail in the admin


def _deleted(admin_: admin.ModelAdmin, request: HttpRequest, delete: Callable[[], None]) -> None:
    """Run a delete action; a refusal (mail still queued, the Inbox, ...) is shown instead of raised."""
    try:
        delete()
    except actions.ServiceError as exc:
        admin_.message_user(request, str(exc), messages.ERROR)


class DeletesThroughActions:
    """The delete confirmation of a model whose delete action removes mail too: the page lists what goes, by
    count, instead of asking for delete permission on each message (which nobody has: mail is read-only)."""

    model: type[Model]

    def get_deleted_objects(self, objs, request: HttpRequest):
        accounts = Account.objects.filter(
            pk__in=[obj.pk for obj in objs] if self.model is Account else [],
        ) | Account.objects.filter(domain__in=[obj.pk for obj in objs] if self.model is Domain else [])
        to_delete = [str(obj) for obj in objs]
        counts = {
            self.model._meta.verbose_name_plural: len(to_delete),
            "accounts": accounts.count(),
            "folders": Mailbox.objects.filter(account__in=accounts).count(),
            "messages": Message.objects.filter(account__in=accounts).count(),
        }
        return to_delete, counts, set(), []


class DomainForm(forms.ModelForm):
    class Meta:
        model = Domain
        fields = ["name", "active"]

    def clean_name(self) -> str:
        name = ascii_domain(self.cleaned_data["name"])
        if not valid_domain(name):
            raise forms.ValidationError("Not a domain name.")
        if Domain.objects.filter(name=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("This domain exists already (perhaps in its other spelling).")
        return name


@admin.register(Domain)
class DomainAdmin(DeletesThroughActions, admin.ModelAdmin):
    form = DomainForm
    list_display = ["__str__", "name", "active", "account_count", "created"]
    list_filter = ["active"]
    search_fields = ["name"]
    actions = ["delete_even_if_queued"]

    @admin.display(description="accounts")
    def account_count(self, domain: Domain) -> int:
        return domain.accounts.count()

    def save_model(self, request: HttpRequest, obj: Domain, form: forms.ModelForm, change: bool) -> None:
        if change:
            actions.update_domain(Domain.objects.get(pk=obj.pk), name=obj.name, active=obj.active)
        else:
            created = actions.create_domain(obj.name)
            if not obj.active:
                actions.update_domain(created, name=created.name, active=False)
            obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Domain) -> None:
        _deleted(self, request, lambda: actions.delete_domain(obj))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Domain]) -> None:
        for domain in queryset:
            self.delete_model(request, domain)

    @admin.action(description="Delete selected domains, even with mail still queued", permissions=["delete"])
    def delete_even_if_queued(self, request: HttpRequest, queryset: QuerySet[Domain]) -> None:
        for domain in queryset:
            _deleted(self, request, functools.partial(actions.delete_domain, domain, force=True))


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_QUOTA = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


class QuotaField(forms.Field):
    """A quota typed in human units ("500M", "2.5 GB", "0" for no limit; binary multiples), stored in bytes."""

    def __init__(self, **kwargs) -> None:
        kwargs.pop("max_length", None)
        kwargs.setdefault("help_text", 'Such as "500M" or "2G"; 0 means no limit.')
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, int) and value > 0:
            for unit in ("T", "G", "M", "K"):
                if value % _UNITS[unit] == 0:
                    return f"{value // _UNITS[unit]}{unit}"
        return value

    def to_python(self, value) -> int:
        text = str(value or "0").strip()
        if text.startswith("-"):
            raise forms.ValidationError("A quota cannot be negative; 0 means no limit.")
        match = _QUOTA.match(text)
        if match is None:
            raise forms.ValidationError('Type a size such as "500M", "2G" or 1048576 (bytes); 0 means no limit.')
        number = int(float(match[1]) * _UNITS[match[2].upper()])
        if number > 2**62:
            raise forms.ValidationError("This quota is too large.")
        return number


class MessageLimitField(forms.IntegerField):
    """A number of messages; empty or 0 means no limit."""

    def to_python(self, value) -> int:
        return super().to_python(value) or 0


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


class PasswordChangeForm(AdminPasswordChangeForm):
    """The admin's password form, saving through the store's action (hashed outside the transaction)."""

    def save(self, commit: bool = True) -> Account:
        actions.set_password(self.user, self.cleaned_data["password1"])
        return self.user


@admin.register(Account)
class AccountAdmin(DeletesThroughActions, UserAdmin):
    add_form = AccountCreationForm
    change_password_form = PasswordChangeForm
    actions = ["delete_even_if_queued"]
    list_display = ["address", "display_name", "usage", "is_active", "is_staff", "created"]
    list_filter = ["is_active", "is_staff", "domain"]
    search_fields = ["address", "display_name"]
    ordering = ["address"]
    readonly_fields = ["domain", "local_part", "usage", "created", "last_login"]
    fieldsets = [
        (None, {"fields": ["address", "password", "display_name", "domain", "local_part"]}),
        ("Storage", {"fields": ["quota_bytes", "quota_messages", "usage"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("History", {"fields": ["created", "last_login"]}),
    ]
    add_fieldsets = [(None, {"fields": ["address", "password", "display_name", "quota_bytes", "is_staff"]})]
    filter_horizontal = ["groups", "user_permissions"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "quota_bytes":
            return QuotaField(label="Quota", required=False)
        if db_field.name == "quota_messages":
            return MessageLimitField(
                label="Message limit", required=False, min_value=0, max_value=2**62, help_text=db_field.help_text
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Account | None = None) -> list[str]:
        # The address is the login and the key of the stored mail: it is fixed once the account exists.
        return [*self.readonly_fields, "address"] if obj else []

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
            kwargs["fields"] = ["address", "password", "display_name", "quota_bytes", "is_staff"]
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request: HttpRequest, obj: Account, form: forms.ModelForm, change: bool) -> None:
        if not change:
            return  # AccountCreationForm.save created it through the action
        changed = {name: getattr(obj, name) for name in actions.ACCOUNT_SETTINGS if name in form.changed_data}
        if changed:
            actions.update_account(obj, **changed)

    def delete_model(self, request: HttpRequest, obj: Account) -> None:
        _deleted(self, request, lambda: actions.delete_account(obj))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        for account in queryset:
            self.delete_model(request, account)

    @admin.action(description="Delete selected accounts, even with mail still queued", permissions=["delete"])
    def delete_even_if_queued(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        for account in queryset:
            _deleted(self, request, functools.partial(actions.delete_account, account, force=True))

    @admin.display(description="used / quota")
    def usage(self, account: Account) -> str:
        used = filesizeformat(account.used_bytes)
        if not account.quota_bytes:
            storage = f"{used} (no limit)"
        else:
            percent = 100 * account.used_bytes / account.quota_bytes
            storage = f"{used} of {filesizeformat(account.quota_bytes)} ({percent:.0f}%)"
        limit = f" of {account.quota_messages}" if account.quota_messages else ""
        return f"{storage}; {account.used_messages}{limit} messages"


class AliasForm(forms.ModelForm):
    class Meta:
        model = Alias
        fields = ["domain", "local_part", "destinations", "active"]

    def clean_local_part(self) -> str:
        return self.cleaned_data["local_part"].strip().lower()

    def clean_destinations(self) -> str:
        destinations = Alias(destinations=self.cleaned_data["destinations"]).destination_list
        wrong = [d for d in destinations if not valid_address(d)]
        if wrong:
            raise forms.ValidationError(f"Not an address: {', '.join(wrong)}")
        if not destinations:
            raise forms.ValidationError("Give at least one address.")
        return ", ".join(destinations)

    def clean(self):
        cleaned = super().clean()
        domain, local = cleaned.get("domain"), cleaned.get("local_part")
        # An alias comes before an account in resolution: one with an account's address would take its mail.
        if domain and local and Account.objects.filter(domain=domain, local_part=local).exists():
            self.add_error("local_part", f"{local}@{domain.name} is an account; an alias would take its mail.")
        return cleaned


@admin.register(Alias)
class AliasAdmin(admin.ModelAdmin):
    form = AliasForm
    list_display = ["__str__", "destinations", "active"]
    list_filter = ["active", "domain"]
    search_fields = ["local_part", "domain__name", "destinations"]

    def save_model(self, request: HttpRequest, obj: Alias, form: forms.ModelForm, change: bool) -> None:
        destinations = obj.destination_list
        if change:
            actions.update_alias(obj, local_part=obj.local_part, destinations=destinations, active=obj.active)
            return
        created = actions.create_alias(f"{obj.local_part}@{obj.domain.name}", destinations)
        if not obj.active:
            actions.update_alias(created, local_part=created.local_part, destinations=destinations, active=False)
        obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Alias) -> None:
        actions.delete_alias(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Alias]) -> None:
        for alias in queryset:
            actions.delete_alias(alias)


class MailboxForm(forms.ModelForm):
    subscribed = forms.BooleanField(
        required=False, help_text="IMAP clients that show subscribed folders only show it (SUBSCRIBE, LSUB)"
    )

    class Meta:
        model = Mailbox
        fields = ["name"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            mine = Subscription.objects.filter(account_id=self.instance.account_id, name=self.instance.name)
            self.fields["subscribed"].initial = mine.exists()


def _subscribed() -> Exists:
    """Whether a folder's name is subscribed, in its own query's terms."""
    return Exists(Subscription.objects.filter(account=OuterRef("account"), name=OuterRef("name")))


class SubscribedFilter(admin.SimpleListFilter):
    title = "subscribed"
    parameter_name = "subscribed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("1", "Yes"), ("0", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Mailbox]) -> QuerySet[Mailbox]:
        if self.value() == "1":
            return queryset.filter(_subscribed())
        if self.value() == "0":
            return queryset.exclude(_subscribed())
        return queryset


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    form = MailboxForm
    list_display = ["name", "account", "role", "subscribed", "message_count", "uidvalidity", "uidnext"]
    list_filter = ["role", SubscribedFilter]
    search_fields = ["name", "account__address"]
    readonly_fields = ["account", "role", "uidvalidity", "uidnext", "highestmodseq", "created"]
    fields = ["account", "name", "role", "subscribed", "uidvalidity", "uidnext", "highestmodseq", "created"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Mailbox]:
        return super().get_queryset(request).select_related("account").annotate(is_subscribed=_subscribed())

    @admin.display(description="subscribed", boolean=True, ordering="is_subscribed")
    def subscribed(self, mailbox: Mailbox) -> bool:
        return mailbox.is_subscribed  # type: ignore[attr-defined]  # annotated by get_queryset

    @admin.display(description="messages")
    def message_count(self, mailbox: Mailbox) -> int:
        return mailbox.messages.count()

    def save_model(self, request: HttpRequest, obj: Mailbox, form, change: bool) -> None:
        if not change:
            actions.create_mailbox(obj.account, obj.name)
            return
        previous = Mailbox.objects.get(pk=obj.pk)
        if previous.name != obj.name:
            actions.rename_mailbox(obj.account, obj.pk, obj.name)  # the subscription follows the folder
        if "subscribed" in form.changed_data:
            actions.set_subscribed(obj.account, obj.name, form.cleaned_data["subscribed"])

    def delete_model(self, request: HttpRequest, obj: Mailbox) -> None:
        _deleted(self, request, lambda: actions.delete_mailbox(obj.account, obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Mailbox]) -> None:
        for mailbox in queryset.select_related("account"):
            self.delete_model(request, mailbox)

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
    readonly_fields = [str(name) for name in fields]

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
        # Other people's mail: only with the explicit "Can view message" permission (superusers have every
        # permission), and every look is logged.
        user = request.user
        return bool(user.is_active and user.is_staff and user.has_perm("mailboxes.view_message"))

    def changelist_view(self, request: HttpRequest, extra_context=None):
        if self.has_view_permission(request):
            audit.info("%s listed messages (search %r)", request.user, request.GET.get("q", ""))
        return super().changelist_view(request, extra_context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        if self.has_view_permission(request):
            found = Message.objects.filter(pk=int(object_id)) if object_id.isdigit() else Message.objects.none()
            owner = found.values_list("account__address", flat=True).first()
            audit.info("%s viewed message %s of %s", request.user, object_id, owner)
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(RecycledMessage)
class RecycledMessageAdmin(admin.ModelAdmin):
    """Mail users removed, kept for MAILSITE_RETENTION_DAYS: restorable into the folder it came from."""

    list_display = ["subject", "from_address", "account", "folder_name", "size", "removed"]
    list_select_related = ["account"]
    search_fields = ["subject", "from_address", "account__address"]
    date_hierarchy = "removed"
    fields = ["account", "folder_name", "subject", "from_name", "from_address", "internal_date", "flags", "size"]
    readonly_fields = [str(name) for name in fields]
    actions = ["restore"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RecycledMessage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RecycledMessage | None = None) -> bool:
        return False  # the periodic purge removes them; restore is the admin's action

    @admin.action(description="Restore selected messages into their folders", permissions=["view"])
    def restore(self, request: HttpRequest, queryset: QuerySet[RecycledMessage]) -> None:
        by_account: dict[int, list[int]] = {}
        for account_id, pk in queryset.values_list("account_id", "pk"):
            by_account.setdefault(account_id, []).append(pk)
        for account in Account.objects.filter(pk__in=by_account):
            try:
                restored = actions.restore(account, by_account[account.pk])
            except actions.ServiceError as exc:
                self.message_user(request, f"{account}: {exc}", messages.ERROR)
            else:
                audit.info("%s restored %d message(s) of %s", request.user, len(restored), account)
                self.message_user(request, f"{account}: restored {len(restored)} message(s).")
