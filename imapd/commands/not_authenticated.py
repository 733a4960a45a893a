"""STARTTLS, LOGIN and AUTHENTICATE PLAIN (RFC 3501 6.2, RFC 4616, SASL-IR RFC 4959)."""

from __future__ import annotations

import asyncio
import base64
import binascii

from django.conf import settings

from imapd.commands.args import count
from imapd.protocol import Atom, Command, ParseError, astring
from imapd.session import No, Session
from mailboxes import signin
from mailsite import tls


async def starttls(session: Session, command: Command) -> str | None:
    count(command, 0)
    if session.tls:
        raise ParseError("TLS is already active")
    session.send(f"{command.tag} OK Begin TLS negotiation now\r\n".encode())
    await session.start_tls(tls.server_context())
    return None  # answered before the handshake, as RFC 3501 6.2.1 requires


async def _login(session: Session, address: str, password: str) -> str:
    if not session.plaintext_auth_allowed:
        raise No("[PRIVACYREQUIRED] Use STARTTLS or the IMAPS port before logging in")
    result = await signin.authenticate(address, password, remote_ip=session.remote_ip, protocol="imap")
    if not result.ok:
        await asyncio.sleep(settings.MAILSITE_AUTH_FAILURE_DELAY)
        raise No("[AUTHENTICATIONFAILED] Authentication failed")
    assert result.account is not None
    await session.logged_in(result.account, app_password_id=result.app_password_id)
    return f"[CAPABILITY {session.capabilities()}] Logged in"


async def login(session: Session, command: Command) -> str:
    user, password = count(command, 2)
    return await _login(session, astring(user), astring(password))


async def authenticate(session: Session, command: Command) -> str:
    args = count(command, 1, 2)
    if not isinstance(args[0], Atom) or args[0].upper() != "PLAIN":
        raise No("Unsupported authentication mechanism; use PLAIN")
    if not session.plaintext_auth_allowed:
        raise No("[PRIVACYREQUIRED] Use STARTTLS or the IMAPS port before logging in")
    if len(args) == 2:
        response = astring(args[1]).encode("ascii", "replace")
        if response == b"=":  # RFC 4959 3: an empty initial response
            response = b""
    else:
        session.send(b"+ \r\n")
        response = await session.read_line()
        if response.strip() == b"*":
            raise ParseError("Authentication cancelled")
    try:
        authzid, authcid, password = base64.b64decode(response.strip(), validate=True).split(b"\0")
        if authzid and authzid != authcid:
            raise No("[AUTHORIZATIONFAILED] Acting as another user is not allowed")
        return await _login(session, authcid.decode("utf-8"), password.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise ParseError("Invalid PLAIN response") from None


HANDLERS = {"STARTTLS": starttls, "LOGIN": login, "AUTHENTICATE": authenticate}
