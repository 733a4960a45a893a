"""One delivery attempt for one destination domain: the MX addresses in turn, one SMTP transaction each.

All recipients of the domain travel in one transaction; each gets its own reply. A failure of the whole
session (no connection, timeout, 4yz greeting, MAIL or DATA) moves the recipients still open to the next
address; a recipient's own RCPT reply is final for this attempt.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from relay.policy import next_mx_after_session_failure


@dataclass(frozen=True)
class Reply:
    code: int | None  # None: no reply at all (connection refused or lost, timeout, TLS failure)
    text: str
    host: str = ""  # the MX host name that gave it


class _SessionFailed(Exception):
    def __init__(self, code: int | None, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def _tls_context() -> ssl.SSLContext:
    # Opportunistic TLS (RFC 3207, like Postfix's default "may" level): encrypt whenever offered, without
    # authenticating the server, since MX certificates cannot be checked without DANE or MTA-STS.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _text(message: bytes | str) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else message


def _expect(reply: tuple[int, bytes], wanted: tuple[int, ...]) -> None:
    code, message = reply
    if code not in wanted:
        raise _SessionFailed(code, _text(message))


def _transaction(
    smtp: smtplib.SMTP, address: str, port: int, sender: str, recipients: Sequence[str], raw: bytes
) -> dict[str, tuple[int, str]]:
    """Run one SMTP session; return each recipient's final reply or raise _SessionFailed."""
    _expect(smtp.connect(address, port), (220,))
    code, message = smtp.ehlo()
    if code != 250:
        _expect(smtp.helo(), (250,))
    if smtp.has_extn("starttls"):
        _expect(smtp.starttls(context=_tls_context()), (220,))
        _expect(smtp.ehlo(), (250,))
    options = []
    if smtp.has_extn("size"):
        options.append(f"SIZE={len(raw)}")
    if smtp.has_extn("8bitmime") and any(byte > 127 for byte in raw):
        options.append("BODY=8BITMIME")
    if not (sender + "".join(recipients)).isascii():
        if not smtp.has_extn("smtputf8"):
            raise _SessionFailed(553, "5.6.7 the server does not support SMTPUTF8 for non-ASCII addresses")
        options.append("SMTPUTF8")
    _expect(smtp.mail(sender, options), (250,))
    replies: dict[str, tuple[int, str]] = {}
    accepted = []
    for rcpt in recipients:
        code, message = smtp.rcpt(rcpt)
        replies[rcpt] = (code, _text(message))
        if code in (250, 251):
            accepted.append(rcpt)
    if not accepted:
        return replies
    try:
        code, message = smtp.data(raw)
    except smtplib.SMTPDataError as exc:
        raise _SessionFailed(exc.smtp_code, _text(exc.smtp_error)) from None
    if next_mx_after_session_failure(code) and not 200 <= code < 300:
        raise _SessionFailed(code, _text(message))
    for rcpt in accepted:
        replies[rcpt] = (code, _text(message))
    return replies


def attempt(
    addresses: Sequence[tuple[str, str]],
    sender: str,
    recipients: Sequence[str],
    raw: bytes,
    *,
    helo: str,
    port: int,
    timeout: float,
) -> dict[str, Reply]:
    """Deliver `raw` to `recipients` through the first address that takes it; a reply for every recipient."""
    pending = list(recipients)
    last = Reply(None, "no MX address to try")
    for host, address in addresses:
        smtp = smtplib.SMTP(local_hostname=helo, timeout=timeout)
        # The name STARTTLS sends as SNI; smtplib sets it only when its constructor connects.
        smtp._host = host  # type: ignore[attr-defined]  # not in typeshed
        try:
            replies = _transaction(smtp, address, port, sender, pending, raw)
        except _SessionFailed as exc:
            last = Reply(exc.code, exc.text, host)
            if next_mx_after_session_failure(exc.code):
                continue
            return {rcpt: last for rcpt in pending}
        except (OSError, smtplib.SMTPException) as exc:
            # Refused, reset, timed out, TLS handshake failed, or the server hung up: try the next address.
            last = Reply(None, f"{address}:{port}: {exc or type(exc).__name__}", host)
            continue
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return {rcpt: Reply(code, text, host) for rcpt, (code, text) in replies.items()}
    return {rcpt: last for rcpt in pending}
