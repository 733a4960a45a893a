"""The address book page: list, add, edit in place, delete, import and export as vCard."""

from __future__ import annotations

from django.contrib import messages as notices
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webmail import address_book, vcard
from webmail.models import Contact
from webmail.views.common import account, account_required

MAX_IMPORT = 5 * 1024 * 1024  # bytes of one vCard file


@account_required
def book(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        name, address = request.POST.get("name", ""), request.POST.get("address", "")
        saved = address_book.save(account(request), name, address, source=Contact.Source.MANUAL)
        if saved is None:
            notices.error(request, f"Not an address: {address[:100]}")
        else:
            notices.success(request, f"Saved {saved}.")
        return redirect("webmail:address_book")
    contacts = Contact.objects.filter(account=account(request))
    return render(request, "webmail/address_book.html", {"contacts": contacts})


@require_POST
@account_required
def delete(request: HttpRequest, contact_id: int) -> HttpResponse:
    removed, _ = Contact.objects.filter(account=account(request), pk=contact_id).delete()
    if removed:
        notices.success(request, "Contact deleted.")
    return redirect("webmail:address_book")


@require_POST
@account_required
def edit(request: HttpRequest, contact_id: int) -> HttpResponse:
    try:
        saved = address_book.change(
            account(request), contact_id, request.POST.get("name", ""), request.POST.get("address", "")
        )
    except address_book.ContactError as exc:
        notices.error(request, str(exc))
    else:
        notices.success(request, f"Saved {saved}.")
    return redirect("webmail:address_book")


@require_POST
@account_required
def import_vcard(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if upload is None or (upload.size or 0) > MAX_IMPORT:
        notices.error(request, "Choose a vCard file (.vcf) of up to 5 MB.")
        return redirect("webmail:address_book")
    text = upload.read().decode("utf-8", "replace")
    cards = vcard.parse(text)
    count = address_book.import_cards(account(request), cards)
    notices.success(request, f"Imported {count} address(es) from {len(cards)} card(s).")
    return redirect("webmail:address_book")


@account_required
def export_vcard(request: HttpRequest) -> HttpResponse:
    cards = [vcard.Card(c.name, (c.address,)) for c in Contact.objects.filter(account=account(request))]
    response = HttpResponse(vcard.serialize(cards), content_type="text/vcard; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="contacts.vcf"'
    return response
