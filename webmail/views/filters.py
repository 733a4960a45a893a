"""Filters and vacation replies: a rules editor and a vacation page that write the account's Sieve script, and
a raw editor for the script itself (errors shown with their line and column). Included by webmail/urls.py."""

from __future__ import annotations

import dataclasses

from django import forms
from django.contrib import messages as notices
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from mailboxes.models import Account
from sieve import rules, scripts
from sieve.models import SieveScript
from webmail.views.common import account, account_required


class RuleForm(forms.Form):
    field = forms.ChoiceField(label="When", choices=list(rules.FIELDS.items()))
    header = forms.CharField(label="Header name", max_length=100, required=False)
    operator = forms.ChoiceField(label="Test", choices=list(rules.OPERATORS.items()))
    value = forms.CharField(label="Value", max_length=500)
    action = forms.ChoiceField(label="Then", choices=list(rules.ACTIONS.items()))
    target = forms.CharField(label="Folder or address", max_length=512, required=False)
    stop = forms.BooleanField(label="Stop here (later rules do not apply)", required=False)


class VacationForm(forms.Form):
    enabled = forms.BooleanField(label="Send vacation replies", required=False)
    subject = forms.CharField(label="Subject", max_length=200, required=False)
    message = forms.CharField(label="Message", max_length=10_000, required=False, widget=forms.Textarea)
    start = forms.DateField(label="From (optional)", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="Until (optional)", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    days = forms.IntegerField(label="Answer a sender again after (days)", min_value=1, max_value=90, initial=7)


class ScriptForm(forms.Form):
    content = forms.CharField(label="Sieve script", required=False, strip=False, widget=forms.Textarea)


def _state(user: Account) -> tuple[rules.Settings | None, SieveScript | None]:
    """The webmail's settings (None if its script was edited by hand) and the active script, if any."""
    own = SieveScript.objects.filter(account=user, name=rules.SCRIPT_NAME).first()
    return rules.settings_of(own.content if own else None), scripts.active_script(user)


def _save(request: HttpRequest, settings: rules.Settings, done: str) -> bool:
    problems = rules.check(settings)
    if not problems:
        try:
            scripts.put_script(account(request), rules.SCRIPT_NAME, rules.script(settings), activate=True)
        except scripts.ScriptError as exc:
            problems = [str(exc)]
    for problem in problems:
        notices.error(request, problem)
    if not problems:
        notices.success(request, done)
    return not problems


@account_required
def filters(request: HttpRequest) -> HttpResponse:
    settings, active = _state(account(request))
    context = {"settings": settings, "active": active, "form": RuleForm(), "script_name": rules.SCRIPT_NAME}
    return render(request, "webmail/filters.html", context)


@require_POST
@account_required
def add_rule(request: HttpRequest) -> HttpResponse:
    settings, _ = _state(account(request))
    form = RuleForm(request.POST)
    if settings is None:
        notices.error(request, "Your script was edited by hand; change it in the script editor.")
    elif not form.is_valid():
        problems = " ".join(str(error) for errors in form.errors.values() for error in errors)
        notices.error(request, f"The rule was not added: {problems}")
    else:
        settings.rules.append(rules.Rule(**form.cleaned_data))
        _save(request, settings, "Rule added.")
    return redirect("webmail:filters")


@require_POST
@account_required
def delete_rule(request: HttpRequest, index: int) -> HttpResponse:
    settings, _ = _state(account(request))
    if settings is not None and 0 <= index < len(settings.rules):
        del settings.rules[index]
        _save(request, settings, "Rule deleted.")
    return redirect("webmail:filters")


@account_required
def vacation(request: HttpRequest) -> HttpResponse:
    settings, active = _state(account(request))
    if request.method == "POST" and settings is not None:
        form = VacationForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            settings.vacation = rules.VacationSettings(
                enabled=data["enabled"],
                subject=data["subject"],
                message=data["message"],
                start=data["start"].isoformat() if data["start"] else "",
                end=data["end"].isoformat() if data["end"] else "",
                days=data["days"],
            )
            if _save(request, settings, "Vacation reply saved."):
                return redirect("webmail:vacation")
    else:
        initial = dataclasses.asdict(settings.vacation) if settings is not None else {}
        form = VacationForm(initial=initial)
    return render(request, "webmail/vacation.html", {"form": form, "settings": settings, "active": active})


@account_required
def script(request: HttpRequest) -> HttpResponse:
    user = account(request)
    active = scripts.active_script(user)
    name = active.name if active else rules.SCRIPT_NAME
    error = ""
    if request.method == "POST":
        form = ScriptForm(request.POST)
        if form.is_valid():
            try:
                scripts.put_script(user, name, form.cleaned_data["content"], activate=True)
            except scripts.ScriptError as exc:
                error = str(exc)
            else:
                notices.success(request, f"Script {name} saved and active.")
                return redirect("webmail:filter_script")
    else:
        form = ScriptForm(initial={"content": active.content if active else ""})
    return render(request, "webmail/filters_script.html", {"form": form, "error": error, "name": name})


urlpatterns = [
    path("", filters, name="filters"),
    path("add/", add_rule, name="filter_add"),
    path("<int:index>/delete/", delete_rule, name="filter_delete"),
    path("script/", script, name="filter_script"),
    path("vacation/", vacation, name="vacation"),
]
