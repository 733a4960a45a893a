"""One delivery attempt for one destination domain: the MX addresses in turn, one SMTP transaction each.

All recipients of the domain travel in one transaction; each gets its own reply. A failure of the whole
session (no connection, timeout, 4yz greeting, MAIL or DATA) moves the recipients still open to the next
address; a recipient's own RCPT reply is final for this attempt.

A session that ends its transaction cleanly is handed back open, so the caller can send the destination's next
message over it after RSET, as Postfix's connection cache does. A reused session that turns out dead is closed
and the message goes through the address list from the start, over a new session.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailcore import xtext
from mailcore.dsn import UNASKED, Requests
from relay.policy import next_mx_after_session_failure


@dataclass(frozen=True)
class Reply:
    code: int | None  # None: no reply at all (connection refused or lost, timeout, TLS failure)
    text: str
    host: str = ""  # the MX host name that gave it
    dsn_passed: bool = False  # the host offered DSN, so the sender's NOTIFY went on with the message (RFC 3461 5.2)


@dataclass(frozen=True)
class Tls:
    """How a session uses TLS: opportunistic (RFC 3207), or required with a certificate valid for the MX host
    name (MTA-STS enforce, RFC 8461 4.2), checked against the system CAs plus `ca_file`. With `report` (MTA-STS
    testing) the certificate is checked as under enforce, but a failure is only reported, as report(host,
    problem), and the session goes on with opportunistic TLS."""

    verify: bool = False
    ca_file: str | None = None
    report: Callable[[str, str], None] | None = None


class _SessionFailed(Exception):
    def __init__(self, code: int | None, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def _tls_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    if not verify:
        # Opportunistic TLS (like Postfix's default "may" level): encrypt whenever offered, without
        # authenticating the server, since MX certificates cannot be checked without DANE or MTA-STS.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _text(message: bytes | str) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else message


def _expect(reply: tuple[int, bytes], wanted: tuple[int, ...]) -> None:
    code, message = reply
    if code not in wanted:
        raise _SessionFailed(code, _text(message))


class Connection:
    """An SMTP session past EHLO (and STARTTLS), ready for a transaction."""

    def __init__(self, smtp: smtplib.SMTP, host: str) -> None:
        self.smtp = smtp
        self.host = host
        self.opened = time.monotonic()
        self.transactions = 0

    def age(self) -> float:
        return time.monotonic() - self.opened

    def reset(self) -> bool:
        """RSET before the next transaction (RFC 5321 4.1.1.5); False, and closed, if the session is gone."""
        try:
            code, _ = self.smtp.rset()
        except (OSError, smtplib.SMTPException):
            code = 0
        if code != 250:
            self.smtp.close()
        return code == 250

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (OSError, smtplib.SMTPException):
            self.smtp.close()


def _open(host: str, address: str, port: int, *, helo: str, timeout: float, tls: Tls) -> Connection:
    smtp = smtplib.SMTP(local_hostname=helo, timeout=timeout)
    # The name STARTTLS sends as SNI and checks the certificate against; smtplib sets it only when its
    # constructor connects.
    smtp._host = host  # type: ignore[attr-defined]  # not in typeshed
    try:
        _expect(smtp.connect(address, port), (220,))
        if smtp.ehlo()[0] != 250:
            _expect(smtp.helo(), (250,))
        if smtp.has_extn("starttls"):
            _expect(smtp.starttls(context=_tls_context(tls.ca_file, tls.verify or tls.report is not None)), (220,))
            _expect(smtp.ehlo(), (250,))
        elif tls.verify:
            raise _SessionFailed(None, f"{host} does not offer STARTTLS, which the MTA-STS policy requires")
        elif tls.report is not None:
            tls.report(host, "no STARTTLS offered")
    except ssl.SSLCertVerificationError as exc:
        smtp.close()
        if tls.report is None:
            raise
        tls.report(host, str(exc))
        return _open(host, address, port, helo=helo, timeout=timeout, tls=Tls(ca_file=tls.ca_file))
    except BaseException:
        smtp.close()
        raise
    return Connection(smtp, host)


def _dsn_options(smtp: smtplib.SMTP, requests: Requests) -> tuple[list[str], Callable[[str], list[str]]]:
    """MAIL's parameters and each RCPT's that carry the sender's requests on: DSN's where the host offers DSN
    (RFC 3461 5.2), REQUIRETLS where it offers that (RFC 8689 5; without it the message may not go)."""
    mail = ["REQUIRETLS"] if requests.require_tls else []
    if not smtp.has_extn("dsn"):
        return mail, lambda rcpt: []
    mail += [f"RET={requests.ret}"] if requests.ret else []
    mail += [f"ENVID={xtext.encode(requests.envid)}"] if requests.envid else []

    def rcpt_options(rcpt: str) -> list[str]:
        notify, orcpt = requests.notify.get(rcpt), requests.orcpt.get(rcpt)
        addr_type, _, address = (orcpt or "").partition(";")
        return ([f"NOTIFY={notify}"] if notify else []) + (
            [f"ORCPT={addr_type};{xtext.encode(address)}"] if orcpt else []
        )

    return mail, rcpt_options


def _transaction(
    smtp: smtplib.SMTP, sender: str, recipients: Sequence[str], raw: bytes, requests: Requests = UNASKED
) -> dict[str, tuple[int, str]]:
    """Run one mail transaction; return each recipient's final reply or raise _SessionFailed."""
    if requests.require_tls and not smtp.has_extn("requiretls"):
        raise _SessionFailed(550, "5.7.30 REQUIRETLS support required: the host does not offer REQUIRETLS")
    options, rcpt_options = _dsn_options(smtp, requests)
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
        code, message = smtp.rcpt(rcpt, rcpt_options(rcpt))
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
    tls: Tls = Tls(),
    reuse: Connection | None = None,
    requests: Requests = UNASKED,
) -> tuple[dict[str, Reply], Connection | None]:
    """Deliver `raw` to `recipients` through the first address that takes it: a reply for every recipient, and
    the session it went over, still open, when that session can carry another transaction (else None).

    `reuse` is an open session of an earlier transaction to the same destination, tried first.
    """
    pending = list(recipients)
    last = Reply(None, "no MX address to try")
    targets: list[Connection | tuple[str, str]] = [reuse] if reuse is not None and reuse.reset() else []
    targets.extend(addresses)
    for target in targets:
        host = target.host if isinstance(target, Connection) else target[0]
        try:
            connection = (
                target if isinstance(target, Connection) else _open(*target, port, helo=helo, timeout=timeout, tls=tls)
            )
        except _SessionFailed as exc:
            last = Reply(exc.code, exc.text, host)
            if next_mx_after_session_failure(exc.code):
                continue
            return {rcpt: last for rcpt in pending}, None
        except (OSError, smtplib.SMTPException) as exc:
            # Refused, reset, timed out, TLS handshake or certificate failed, or the server hung up: next address.
            where = f"{target[1]}:{port}" if isinstance(target, tuple) else host
            why = "MTA-STS requires a valid certificate: " if isinstance(exc, ssl.SSLCertVerificationError) else ""
            last = Reply(None, f"{where}: {why}{exc or type(exc).__name__}", host)
            continue
        try:
            replies = _transaction(connection.smtp, sender, pending, raw, requests)
        except _SessionFailed as exc:
            connection.close()
            last = Reply(exc.code, exc.text, host)
            if next_mx_after_session_failure(exc.code):
                continue
            return {rcpt: last for rcpt in pending}, None
        except (OSError, smtplib.SMTPException) as exc:
            connection.smtp.close()
            last = Reply(None, f"{host}: {exc or type(exc).__name__}", host)
            continue
        connection.transactions += 1
        passed = connection.smtp.has_extn("dsn")
        return {rcpt: Reply(code, text, host, passed) for rcpt, (code, text) in replies.items()}, connection
    return {rcpt: last for rcpt in pending}, None
