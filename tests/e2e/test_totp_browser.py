"""Two-factor sign-in in a real browser: enrol from the QR code, sign in with a code, no code twice, recovery."""

from __future__ import annotations

import datetime
import os
import urllib.parse

import pyotp
import segno
from playwright.sync_api import expect

from credentials.models import SignIn
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


def password_step(page, base_url: str, address: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("input[name=address]", address)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code/")


def code_step(page, code: str) -> None:
    page.fill("input[name=code]", code)
    page.click("form:has(input[name=code]) button[type=submit]")


def sign_out(page) -> None:
    page.click("form.logout button")
    expect(page.locator("input[name=password]")).to_be_visible()


def test_enrol_sign_in_with_a_code_once_and_a_recovery_code_once(web_server, page, alice) -> None:
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.click("a.security-link")
    page.click("text=Set up two-factor sign-in")

    # What the QR code holds is the otpauth URI the page also links to: render that URI and compare.
    uri = page.get_attribute("#totp-uri", "href")
    assert uri is not None
    assert uri.startswith("otpauth://totp/")
    svg_path = page.locator(".qr svg path.qrline").get_attribute("d")
    assert f'd="{svg_path}"' in segno.make(uri, error="m").svg_inline(scale=5, border=4)
    secret = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]
    assert page.text_content("#totp-secret") == secret
    authenticator = pyotp.TOTP(secret)

    code_step(page, authenticator.now())
    codes = page.locator(".recovery-codes code").all_text_contents()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    page.click("text=Done")
    expect(page.locator("#two-factor .status")).to_contain_text("10 recovery codes left")
    sign_out(page)

    # The code shown at enrolment was used there; the app's next code (within the drift window) signs in.
    next_code = authenticator.at(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30))
    password_step(page, web_server.url, alice.address)
    code_step(page, next_code)
    page.wait_for_selector("#list")
    sign_out(page)

    password_step(page, web_server.url, alice.address)
    code_step(page, next_code)
    expect(page.locator(".error")).to_contain_text("wrong or was used already")
    assert page.url.endswith("/login/code/")

    code_step(page, codes[3])
    page.wait_for_selector("#list")
    sign_out(page)

    password_step(page, web_server.url, alice.address)
    code_step(page, codes[3])
    expect(page.locator(".error")).to_contain_text("wrong or was used already")

    methods = list(SignIn.objects.filter(account=alice).order_by("created").values_list("method", flat=True))
    assert methods == ["password", "password + TOTP", "password + recovery code"]


def test_without_two_factor_the_password_alone_signs_in(web_server, page, alice) -> None:
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.click("a.security-link")
    expect(page.locator("#two-factor .status")).to_contain_text("Off")
    expect(page.locator("#sign-ins tbody tr").first).to_contain_text("password")
