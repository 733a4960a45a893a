"""Forms of the webmail. Header fields refuse line breaks here, before anything is built."""

from __future__ import annotations

from zoneinfo import available_timezones

from django import forms

from webmail.addresses import AddressError, has_line_break, parse_field
from webmail.models import PAGE_SIZES, UNDO_SEND_DELAYS


class LoginForm(forms.Form):
    address = forms.CharField(
        label="Address", max_length=320, widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True})
    )
    password = forms.CharField(
        label="Password",
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data if item]
        return [single(data, initial)] if data else []


class _SingleLine(forms.CharField):
    """A header value: a line break anywhere (after the browser and Django are done with it) is refused."""

    def to_python(self, value):
        if isinstance(value, str) and has_line_break(value):
            raise forms.ValidationError("Line breaks are not allowed here.")
        return super().to_python(value)


class ComposeForm(forms.Form):
    to = _SingleLine(label="To", required=False, max_length=10000)
    cc = _SingleLine(label="Cc", required=False, max_length=10000)
    bcc = _SingleLine(label="Bcc", required=False, max_length=10000)
    subject = _SingleLine(label="Subject", required=False, max_length=998)
    body = forms.CharField(label="Message", required=False, strip=False, widget=forms.Textarea(attrs={"rows": 16}))
    # The rich editor's HTML (webmail.js turns the field on when the editor runs; without it only `body` is sent).
    body_html = forms.CharField(
        required=False, strip=False, max_length=40_000_000, widget=forms.HiddenInput(attrs={"disabled": True})
    )
    attachments = MultipleFileField(label="Attach files", required=False)
    in_reply_to = _SingleLine(required=False, widget=forms.HiddenInput, max_length=998)
    references = _SingleLine(required=False, widget=forms.HiddenInput, max_length=20000)
    replying = forms.IntegerField(required=False, widget=forms.HiddenInput)
    draft = forms.IntegerField(required=False, widget=forms.HiddenInput)
    # "Send later": a time in the user's time zone (the one active for the request), to the second.
    send_at = forms.DateTimeField(
        label="Send at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}, format="%Y-%m-%dT%H:%M:%S"),
    )

    def __init__(self, *args, sending: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sending = sending
        for name in ("to", "cc", "bcc"):
            self.fields[name].widget.attrs.update({"autocomplete": "off", "data-contacts": "1", "list": f"{name}-list"})

    def _addresses(self, name: str):
        try:
            return parse_field(self.cleaned_data.get(name, ""), str(self.fields[name].label or name))
        except AddressError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_to(self):
        return self._addresses("to")

    def clean_cc(self):
        return self._addresses("cc")

    def clean_bcc(self):
        return self._addresses("bcc")

    def clean(self):
        cleaned = super().clean()
        if self.sending and not self.errors and not (cleaned.get("to") or cleaned.get("cc") or cleaned.get("bcc")):
            raise forms.ValidationError("Add at least one recipient.")
        return cleaned


class FolderForm(forms.Form):
    name = _SingleLine(label="Folder name", max_length=512)


def _time_zones() -> list[tuple[str, str]]:
    return [("", "UTC (until your browser reports its zone)"), *((z, z) for z in sorted(available_timezones()))]


class SettingsForm(forms.Form):
    display_name = _SingleLine(label="Your name", required=False, max_length=200)
    signature = forms.CharField(
        label="Signature",
        required=False,
        max_length=4000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Added below new messages, replies and forwards.",
    )
    signature_html = forms.CharField(
        label="HTML signature",
        required=False,
        max_length=20000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="HTML (pasted from elsewhere, say) for messages written in the rich editor; cleaned like mail "
        "you send. Empty: the signature above.",
    )
    time_zone = forms.ChoiceField(label="Time zone", required=False, choices=_time_zones)
    reading_pane = forms.BooleanField(
        label="Reading pane", required=False, help_text="Open messages beside the list rather than in its place."
    )
    page_size = forms.TypedChoiceField(label="Messages per page", coerce=int, choices=[(n, str(n)) for n in PAGE_SIZES])
    undo_send_seconds = forms.TypedChoiceField(
        label="Undo send",
        coerce=int,
        choices=[(n, "off" if n == 0 else f"{n} seconds") for n in UNDO_SEND_DELAYS],
        help_text="How long Send waits, with an Undo button, before the message leaves.",
    )
