"""Creating, renaming and deleting the user's own folders (the special folders stay)."""

from __future__ import annotations

from django import forms
from django.contrib import messages as notices
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from mailboxes import actions
from webmail import queries
from webmail.forms import FolderForm
from webmail.views.common import account, account_required, folder_of


def _name_errors(form: forms.Form) -> str:
    return " ".join(str(error) for error in form.errors.get("name", []))


@account_required
def manage(request: HttpRequest) -> HttpResponse:
    folders = queries.folders(account(request))
    return render(request, "webmail/folders.html", {"folders": folders, "form": FolderForm()})


@require_POST
@account_required
def create(request: HttpRequest) -> HttpResponse:
    form = FolderForm(request.POST)
    if form.is_valid():
        try:
            created = actions.create_mailbox(account(request), form.cleaned_data["name"])
        except actions.ServiceError as exc:
            notices.error(request, f"The folder was not created: {exc}")
        else:
            notices.success(request, f"Folder {created.name} created.")
    else:
        notices.error(
            request, f"The folder was not created: {' '.join(str(error) for error in form.errors.get('name', []))}"
        )
    return redirect("webmail:folders")


@require_POST
@account_required
def rename(request: HttpRequest, folder_id: int) -> HttpResponse:
    current = folder_of(request, folder_id)
    form = FolderForm(request.POST)
    if current.role:
        notices.error(request, f"{current.name} is a special folder and keeps its name.")
    elif form.is_valid():
        try:
            actions.rename_mailbox(account(request), current.pk, form.cleaned_data["name"])
        except actions.ServiceError as exc:
            notices.error(request, f"The folder was not renamed: {exc}")
        else:
            notices.success(request, f"Folder renamed to {form.cleaned_data['name']}.")
    else:
        notices.error(
            request, f"The folder was not renamed: {' '.join(str(error) for error in form.errors.get('name', []))}"
        )
    return redirect("webmail:folders")


@require_POST
@account_required
def delete(request: HttpRequest, folder_id: int) -> HttpResponse:
    current = folder_of(request, folder_id)
    if current.role:
        notices.error(request, f"{current.name} is a special folder and cannot be deleted.")
        return redirect("webmail:folders")
    try:
        actions.delete_mailbox(account(request), current.pk)
    except actions.ServiceError as exc:
        notices.error(request, f"The folder was not deleted: {exc}")
    else:
        notices.success(request, f"Folder {current.name} deleted with its messages.")
    return redirect("webmail:folders")
