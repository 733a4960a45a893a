"""Passkeys in a real browser: Chromium's virtual authenticator (DevTools WebAuthn domain) registers a passkey on
the security page, then signs in with it as the second step."""

from __future__ import annotations

import os

from playwright.sync_api import expect

from credentials.models import Passkey, SignIn
from tests.conftest import PASSWORD
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    browser_fixture,
    page_fixture,
    sign_in,
)

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM calls between browser steps (see test_webmail_browser)


def test_add_a_passkey_then_sign_in_with_it(web_server, page, alice) -> None:
    # WebAuthn wants a domain as relying party id, never an IP address: the same server, reached as localhost.
    base = web_server.url.replace("127.0.0.1", "localhost")
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    sign_in(page, base, alice.address, PASSWORD)
    page.goto(f"{base}/settings/security/")
    page.fill("#passkey-name", "Laptop")
    page.click("#passkey-add button[type=submit]")
    expect(page.locator("#passkeys tr[data-passkey='Laptop']")).to_be_visible()
    assert Passkey.objects.filter(account=alice, name="Laptop").exists()

    page.click("form.logout button")
    page.fill("input[name=address]", alice.address)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code/")
    expect(page.locator("input[name=code]")).to_have_count(0)  # a passkey only: no code field
    page.click("#passkey-use")
    page.wait_for_selector("#list")
    assert Passkey.objects.get(account=alice).last_used is not None
    assert SignIn.objects.filter(account=alice).latest("created").method == "password + passkey"

    page.goto(f"{base}/settings/security/")
    page.click("#passkeys tr[data-passkey='Laptop'] button.danger")
    expect(page.locator("#passkeys tr[data-passkey='Laptop']")).to_have_count(0)
    page.click("form.logout button")
    sign_in(page, base, alice.address, PASSWORD)  # no second step any more
