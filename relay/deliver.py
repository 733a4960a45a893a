"""One delivery attempt for one destination domain: the MX addresses in turn, one SMTP transaction each.

All recipients of the domain travel in one transaction; each gets its own reply. A failure of the whole
session (no connection, timeout, 4yz greeting, MAIL or DATA) moves the recipients still open to the next
address; a recipient's own RCPT reply is final for this attempt.

The transaction itself is `relay.transaction` (PIPELINING and CHUNKING where offered); smtplib only connects,
says EHLO, starts TLS and authenticates, and this module writes the transaction's bytes and reads its replies.

A session that ends its transaction cleanly is handed back open, so the caller can send the destination's next
message over it after RSET, as Postfix's connection cache does. A reused session that turns out dead is closed
and the message goes through the address list from the start, over a new session.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mailcore import xtext
from mailcore.dsn import UNASKED, Requests
from relay.policy import next_mx_after_session_failure
from relay.transaction import Failed, Features, Transaction


@dataclass(frozen=True)
class Reply:
    code: int | None  # None: no reply at all (connection refused or lost, timeout, TLS failure)
    text: str
    host: str = ""  # the MX host name that gave it
    dsn_passed: bool = False  # the host offered DSN, so the sender's NOTIFY went on with the message (RFC 3461 5.2)


@dataclass(frozen=True)
class Tls:
    """How a session uses TLS: opportunistic (RFC 3207), or required with a certificate valid for the MX host
    name (MTA-STS enforce, RFC 8461 4.2, or a route's STARTTLS), checked against the system CAs plus `ca_file`.
    With `implicit` the connection is TLS from the start (RFC 8314 3.3, a route's port 465). With `report`
    (MTA-STS testing) the certificate is checked as under enforce, but a failure is only reported, as
    report(host, problem), and the session goes on with opportunistic TLS."""

    verify: bool = False
    ca_file: str | None = None
    report: Callable[[str, str], None] | None = None
    implicit: bool = False
    required_by: str = "the MTA-STS policy"  # named when a required STARTTLS is not offered


@dataclass(frozen=True)
class Credentials:
    """A route's AUTH user and password; the password is left out of every repr."""

    user: str
    password: str = field(repr=False)


class _SessionFailed(Exception):
    def __init__(self, code: int | None, text: str, *, next_mx: bool = False) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.next_mx = next_mx  # try the next address even for a permanent code


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
    """An SMTP session past EHLO (and STARTTLS, AUTH), ready for a transaction."""

    def __init__(self, smtp: smtplib.SMTP, host: str) -> None:
        self.smtp = smtp
        self.host = host
        self.opened = time.monotonic()
        self.transactions = 0

    def age(self) -> float:
        return time.monotonic() - self.opened

    def features(self) -> Features:
        return Features(
            pipelining=self.smtp.has_extn("pipelining"),
            chunking=self.smtp.has_extn("chunking"),
            size=self.smtp.has_extn("size"),
            eight_bit=self.smtp.has_extn("8bitmime"),
            smtputf8=self.smtp.has_extn("smtputf8"),
        )

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (OSError, smtplib.SMTPException):
            self.smtp.close()


def _authenticate(smtp: smtplib.SMTP, host: str, credentials: Credentials) -> None:
    """AUTH PLAIN, else LOGIN (RFC 4954, RFC 4616), whichever the server offers; never over a clear session."""
    offered = (smtp.esmtp_features.get("auth") or "").upper().split()
    mechanism = next((name for name in ("PLAIN", "LOGIN") if name in offered), None)
    if mechanism is None:
        raise _SessionFailed(None, f"{host} offers no AUTH PLAIN or LOGIN, which the route needs")
    smtp.user, smtp.password = credentials.user, credentials.password  # read by smtplib's auth_plain/auth_login
    authenticate = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
    try:
        smtp.auth(mechanism, authenticate)
    except smtplib.SMTPAuthenticationError as exc:
        # A refused login is our configuration, not the recipients' fault: the mail waits for it to be fixed
        # instead of bouncing (Postfix's smtp_sasl_auth_soft_bounce). The server's reply is kept in the text;
        # the credentials are never part of a reply or log line.
        reply = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        raise _SessionFailed(454, f"4.7.0 {host} refused our login, the mail waits: {reply}") from None


def _open(
    host: str, address: str, port: int, *, helo: str, timeout: float, tls: Tls, credentials: Credentials | None
) -> Connection:
    # Made only when TLS is used: loading the system CAs costs more than a whole session on loopback.
    checked = tls.verify or tls.report is not None
    smtp = (
        smtplib.SMTP_SSL(local_hostname=helo, timeout=timeout, context=_tls_context(tls.ca_file, checked))
        if tls.implicit
        else smtplib.SMTP(local_hostname=helo, timeout=timeout)
    )
    # The name STARTTLS (or implicit TLS) sends as SNI and checks the certificate against; smtplib sets it only
    # when its constructor connects.
    smtp._host = host  # type: ignore[attr-defined]  # not in typeshed
    try:
        _expect(smtp.connect(address, port), (220,))
        if smtp.ehlo()[0] != 250:
            _expect(smtp.helo(), (250,))
        if not tls.implicit and smtp.has_extn("starttls"):
            _expect(smtp.starttls(context=_tls_context(tls.ca_file, checked)), (220,))
            _expect(smtp.ehlo(), (250,))
        elif tls.verify and not tls.implicit:
            raise _SessionFailed(None, f"{host} does not offer STARTTLS, which {tls.required_by} requires")
        elif tls.report is not None and not tls.implicit:
            tls.report(host, "no STARTTLS offered")
        if credentials is not None:
            _authenticate(smtp, host, credentials)
    except ssl.SSLCertVerificationError as exc:
        smtp.close()
        if tls.report is None:
            raise
        tls.report(host, str(exc))
        return _open(
            host, address, port, helo=helo, timeout=timeout, tls=Tls(ca_file=tls.ca_file), credentials=credentials
        )
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
    connection: Connection,
    sender: str,
    recipients: Sequence[str],
    raw: bytes,
    *,
    reset: bool,
    requests: Requests = UNASKED,
) -> tuple[dict[str, tuple[int, str]], bool]:
    """Run one mail transaction (pipelined and in BDAT chunks where offered): each recipient's final reply, and
    whether the session is still in step for another (no pipelined reply left unread); or _SessionFailed.
    `reset` sends RSET first, for a session that carried a transaction before."""
    smtp = connection.smtp
    if requests.require_tls and not smtp.has_extn("requiretls"):
        # RFC 8689 4.2.1: try each of the domain's MX hosts for one that meets the requirement; with none, the
        # message is not sent (the last of these replies bounces it).
        raise _SessionFailed(
            550, "5.7.30 REQUIRETLS support required: the host does not offer REQUIRETLS", next_mx=True
        )
    mail_options, rcpt_options = _dsn_options(smtp, requests)
    transaction = Transaction(
        sender,
        recipients,
        raw,
        connection.features(),
        reset=reset,
        mail_options=mail_options,
        rcpt_options=rcpt_options,
    )
    while transaction.result is None:
        data = transaction.to_send()
        if data:
            smtp.send(data)
        code, message = smtp.getreply()
        transaction.receive(code, _text(message))
    if isinstance(transaction.result, Failed):
        raise _SessionFailed(transaction.result.code, transaction.result.text)
    return transaction.result.replies, transaction.outstanding == 0


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
    credentials: Credentials | None = None,
    reuse: Connection | None = None,
    requests: Requests = UNASKED,
) -> tuple[dict[str, Reply], Connection | None]:
    """Deliver `raw` to `recipients` through the first address that takes it: a reply for every recipient, and
    the session it went over, still open, when that session can carry another transaction (else None).

    `reuse` is an open session of an earlier transaction to the same destination, tried first; its transaction
    starts with RSET (RFC 5321 4.1.1.5), pipelined with the rest where the server allows.
    """
    pending = list(recipients)
    last = Reply(None, "no MX address to try")
    targets: list[Connection | tuple[str, str]] = [reuse] if reuse is not None else []
    targets.extend(addresses)
    for target in targets:
        host = target.host if isinstance(target, Connection) else target[0]
        try:
            connection = (
                target
                if isinstance(target, Connection)
                else _open(*target, port, helo=helo, timeout=timeout, tls=tls, credentials=credentials)
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
            replies, in_step = _transaction(
                connection, sender, pending, raw, reset=connection is reuse, requests=requests
            )
        except _SessionFailed as exc:
            connection.smtp.close()  # replies to pipelined commands may still be on their way: no QUIT
            last = Reply(exc.code, exc.text, host)
            if exc.next_mx or next_mx_after_session_failure(exc.code):
                continue
            return {rcpt: last for rcpt in pending}, None
        except (OSError, smtplib.SMTPException) as exc:
            # A reused session found closed, or the server hung up mid-transaction: nothing was accepted.
            connection.smtp.close()
            last = Reply(None, f"{host}: {exc or type(exc).__name__}", host)
            continue
        connection.transactions += 1
        passed = connection.smtp.has_extn("dsn")
        if not in_step:
            connection.smtp.close()
        return (
            {rcpt: Reply(code, text, host, passed) for rcpt, (code, text) in replies.items()},
            connection if in_step else None,
        )
    return {rcpt: last for rcpt in pending}, None
