"""The address book in a real browser: filled by sending, typed in, imported and exported as vCard, and used
by the address suggestions of the compose page."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    assert_full_page,
    browser_fixture,
    sign_in,
    sized_page_fixture,
    type_in_message,
)
from webmail.models import Contact
from webmail.vcard import parse

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

VCARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Lee;Ann;;;\r\nFN:Ann Lee\r\nitem1.EMAIL;type=INTERNET:ann@example.org\r\n"
    "END:VCARD\r\nBEGIN:VCARD\r\nVERSION:4.0\r\nFN:Phone Only\r\nTEL:+1 555 0100\r\nEND:VCARD\r\n"
)


def test_address_book(web_server, sized_page, alice, tmp_path) -> None:
    page = sized_page
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.click("#compose-link")
    page.fill("#id_to", "Carol Jones <carol@remote.test>")
    page.fill("#id_subject", "Hello")
    type_in_message(page, "Hi Carol")
    page.click("button[value=send]")
    expect(page.locator(".notice")).to_contain_text("Message sent")

    page.click("a.contacts-link")
    assert_full_page(page)
    carol = page.locator("tr[data-address='carol@remote.test']")
    expect(carol).to_contain_text("Carol Jones")
    expect(carol.locator(".source")).to_have_text("written to")

    page.fill("#add-contact input[name=name]", "Dan")
    page.fill("#add-contact input[name=address]", "dan@example.org")
    page.click("#add-contact button")
    expect(page.locator(".notice")).to_contain_text("Saved Dan <dan@example.org>")
    page.fill("#add-contact input[name=address]", "not-an-address")
    page.click("#add-contact button")
    expect(page.locator(".notice")).to_contain_text("Not an address: not-an-address")

    card = tmp_path / "contacts.vcf"
    card.write_text(VCARD)
    page.set_input_files("#import-contacts input[type=file]", str(card))
    page.click("#import-contacts button")
    expect(page.locator(".notice")).to_contain_text("Imported 1 address(es) from 1 card(s)")
    expect(page.locator("tr[data-address='ann@example.org']")).to_contain_text("Ann Lee")

    page.locator("tr[data-address='dan@example.org']").get_by_role("button", name="Delete").click()
    expect(page.locator("tr[data-address='dan@example.org']")).to_have_count(0)

    with page.expect_download() as download:
        page.click("a:has-text('Export all as vCard')")
    exported = {card.addresses[0]: card.name for card in parse(Path(download.value.path()).read_text())}
    assert exported == {"ann@example.org": "Ann Lee", "carol@remote.test": "Carol Jones"}

    # The compose page suggests from the address book.
    page.click("#compose-link")
    page.locator("#id_to").press_sequentially("ann")
    expect(page.locator("#to-list option[value='Ann Lee <ann@example.org>']")).to_have_count(1)
    assert Contact.objects.filter(account=alice).count() == 2


def test_a_contact_is_edited_in_its_row(web_server, sized_page, alice) -> None:
    page = sized_page
    Contact.objects.create(account=alice, name="Bob", address="bob@old.example", source=Contact.Source.SENT)
    Contact.objects.create(account=alice, name="Eve", address="eve@example.org")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.click("a.contacts-link")
    row = page.locator("tr[data-address='bob@old.example']")
    row.locator(".edit-contact summary").click()
    row.locator(".edit-form input[name=name]").fill("Robert Example")
    row.locator(".edit-form input[name=address]").fill("robert@new.example")
    row.locator(".edit-form button").click()
    assert_full_page(page)
    expect(page.locator(".notice")).to_contain_text("Saved Robert Example <robert@new.example>")
    row = page.locator("tr[data-address='robert@new.example']")
    expect(row.locator(".name")).to_have_text("Robert Example")
    expect(row.locator(".source")).to_have_text("added by the user")
    expect(page.locator("tr[data-address='bob@old.example']")).to_have_count(0)

    # An address another contact has, or no address at all, is refused and changes nothing.
    row.locator(".edit-contact summary").click()
    row.locator(".edit-form input[name=address]").fill("EVE@example.org")
    row.locator(".edit-form button").click()
    assert_full_page(page)
    expect(page.locator(".notice")).to_contain_text("EVE@example.org is already in your address book.")
    row = page.locator("tr[data-address='robert@new.example']")
    row.locator(".edit-contact summary").click()
    row.locator(".edit-form input[name=address]").fill("robert at new")
    row.locator(".edit-form button").click()
    expect(page.locator(".notice")).to_contain_text("Not an address: robert at new")
    assert sorted(Contact.objects.filter(account=alice).values_list("name", "address")) == [
        ("Eve", "eve@example.org"),
        ("Robert Example", "robert@new.example"),
    ]
