"""aiosmtpd hooks: gather values, ask `policy`, make one store call per step, return the reply.

A hook that returns a reply does aiosmtpd's bookkeeping itself (recording the sender or recipient) only when
the reply is a success.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from typing import cast

from aiosmtpd.smtp import AuthResult, Envelope, Session
from django.conf import settings

from credentials.revocation import ends_session
from mailauth import claims, dnsbl, junk, tally, verify
from mailauth import queries as mailauth_queries
from mailauth import results as ar_results
from mailboxes import actions, asyncdb, signin
from mailboxes.actions import outbound
from mailboxes.models import Account
from mailcore.authors import AmbiguousAuthor, author_domain
from mailcore.authors import authors as read_authors
from mailcore.dsn import Requests
from mailcore.mime import HeaderTooLarge, MimeTooDeep
from mailsite import hardening
from ops import limits, metrics
from relay import dead
from smtpd import etrn, lookups, message, policy
from smtpd.batching import DeliveryGroups
from smtpd.protocol import MailsiteEnvelope, MailsiteSMTP

log = logging.getLogger("smtpd")

AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"
AUTH_THROTTLED = "454 4.7.0 Too many failed attempts, try again later"
AUTH_UNAVAILABLE = "454 4.7.0 Temporary authentication failure"  # RFC 4954 6


def _declared_size(options: list[str]) -> int:
    for option in options:
        name, _, value = option.partition("=")
        if name == "SIZE" and value.isdigit():
            return int(value)
    return 0


def _sender(envelope: Envelope) -> str:
    # aiosmtpd records the null reverse-path as "<>"; the store wants "".
    return "" if envelope.mail_from is None or envelope.mail_from == "<>" else envelope.mail_from


def _requests(envelope: MailsiteEnvelope) -> Requests:
    """The envelope's DSN (RFC 3461) and REQUIRETLS (RFC 8689) parameters, as the queue keeps them."""
    mail, by_recipient = envelope.mail_parameters, envelope.rcpt_parameters
    return Requests(
        ret=mail.ret,
        envid=mail.envid,
        require_tls=mail.require_tls,
        notify={rcpt: found.notify for rcpt, found in by_recipient.items() if found.notify},
        orcpt={rcpt: found.orcpt for rcpt, found in by_recipient.items() if found.orcpt},
    )


# RFC 5321 3.8: a 421 may be sent asynchronously before the server closes the channel.
REVOKED = "421 4.7.0 The app password of this session was revoked"


async def _end_when_revoked(server: MailsiteSMTP, account_id: int, app_password_id: int) -> None:
    """Until the connection ends (which cancels this), close it if the app password is revoked; a message
    in transfer then gets no 250, so the client keeps it and nothing is lost."""

    def end() -> None:
        transport = server.transport
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(REVOKED.encode() + b"\r\n")
            transport.close()

    async with ends_session(account_id, app_password_id, end):
        await asyncio.Event().wait()


def _flush(request: etrn.Request) -> int:
    """ETRN's work: the domain's queued mail due now, and the domain no longer dead (its host is back)."""
    count = outbound.flush_domain(request.domain, subdomains=request.subdomains)
    dead.reached(request.domain)
    return count


def _verdict(spam: junk.JunkResult | None, account_ids: list[int], message_is_junk: bool) -> tuple[str, str]:
    """The engine and verdict a message is counted under (mailsite_spam_verdicts_total)."""
    if spam is None or (spam.score is None and not spam.spamicity):
        return (spam.engine if spam is not None else "none"), "unscored"
    return spam.engine, "junk" if spam.junk_for(account_ids, message_is_junk=message_is_junk) else "ham"


class Handler:
    def __init__(self, role: policy.ListenerRole, groups: DeliveryGroups) -> None:
        self.role = role
        self.groups = groups
        self.hostname: str = settings.MAILSITE_HOSTNAME
        self.delimiter: str = settings.MAILSITE_RECIPIENT_DELIMITER
        self.local_domains = mailauth_queries.LocalDomains()
        self.tally = tally.Tally()
        self.rate = limits.submission_rate() if role.submission else None
        if not role.submission and settings.MAILSITE_AUTH_VERIFY:
            verify.prepare()

    async def handle_EHLO(
        self, server: MailsiteSMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        lines = [line for line in responses[:-1] if self.role.submission or not line.startswith("250-AUTH")]
        # CHUNKING (RFC 3030) without BINARYMIME: chunks carry the same 7-bit or 8-bit text as DATA.
        lines += ["250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250-DSN", "250-CHUNKING"]
        if server.tls_active:
            lines.append("250-REQUIRETLS")  # RFC 8689 3: offered on TLS sessions only
        if settings.MAILSITE_ETRN_NETWORKS and not self.role.submission:
            lines.append("250-ETRN")
        return [*lines, responses[-1]]

    async def etrn(self, server: MailsiteSMTP, arg: str) -> str:
        """ETRN (RFC 1985) on the MX, for clients on MAILSITE_ETRN_NETWORKS."""
        if self.role.submission:
            return etrn.NOT_HERE
        request = etrn.parse(arg)
        if isinstance(request, str):
            return request
        node = ("@" if request.subdomains else "") + request.domain
        if not hardening.is_trusted(server.client_ip, settings.MAILSITE_ETRN_NETWORKS):
            log.info("smtp etrn refused client=%s node=%s", server.client_ip, node)
            return etrn.refused(node)
        try:
            count = await asyncdb.call(_flush, request)
        except Exception:
            log.exception("smtp etrn failed client=%s node=%s", server.client_ip, node)
            return etrn.UNAVAILABLE.format(node=node)
        log.info("smtp etrn client=%s node=%s messages=%d", server.client_ip, node, count)
        return etrn.started(node, count)

    async def authenticate(self, server: MailsiteSMTP, login: bytes, password: bytes) -> AuthResult:
        try:
            result = await signin.authenticate(
                login.decode("utf-8", "replace"),
                password.decode("utf-8", "replace"),
                remote_ip=server.client_ip,
                protocol="smtp",
            )
        except Exception:
            log.exception("smtp auth failed internally client=%s", server.client_ip)
            return AuthResult(success=False, handled=False, message=AUTH_UNAVAILABLE)
        if result.account is not None:
            log.info("smtp auth ok client=%s user=%s", server.client_ip, result.account.address)
            if result.app_password_id is not None:
                watch = _end_when_revoked(server, result.account.pk, result.app_password_id)
                server.session_tasks.append(asyncio.get_running_loop().create_task(watch))
            return AuthResult(success=True, auth_data=result.account, message=AUTH_OK)
        log.info("smtp auth failed client=%s throttled=%s", server.client_ip, result.throttled)
        await asyncio.sleep(settings.MAILSITE_AUTH_FAILURE_DELAY)
        return AuthResult(success=False, handled=False, message=AUTH_THROTTLED if result.throttled else AUTH_FAILED)

    async def handle_MAIL(
        self, server: MailsiteSMTP, session: Session, envelope: MailsiteEnvelope, address: str, options: list[str]
    ) -> str:
        sender = "" if address == "<>" else address
        reply = policy.check_sender(sender, smtputf8="SMTPUTF8" in options)
        if reply:
            return reply
        if self.role.submission:
            own = await asyncdb.call(lookups.sender_addresses, cast(Account, session.auth_data).pk)
            if not policy.sender_allowed(sender, own, delimiter=self.delimiter):
                return policy.SENDER_NOT_OWNED
            account_id = cast(Account, session.auth_data).pk
            if self.rate is not None and not self.rate.allow(account_id):
                log.info("smtp refused client=%s account=%s reason=submission-rate", server.client_ip, account_id)
                return limits.SUBMISSION_RATE_EXCEEDED
            envelope.own_addresses = own
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender ok"

    async def handle_RCPT(
        self, server: MailsiteSMTP, session: Session, envelope: MailsiteEnvelope, address: str, options: list[str]
    ) -> str:
        reply = policy.check_address(address, smtputf8=envelope.smtp_utf8) or policy.too_many_recipients(
            len(envelope.rcpt_tos)
        )
        if reply:
            return reply
        address = policy.normalise_address(address)
        resolution = await asyncdb.call(actions.resolve_recipient, address, size=_declared_size(envelope.mail_options))
        reply = policy.rcpt_reply(str(resolution.status), self.role, authenticated=bool(session.authenticated))
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
            envelope.resolutions[address] = resolution
        return reply

    async def handle_DATA(self, server: MailsiteSMTP, session: Session, envelope: MailsiteEnvelope) -> str:
        queue_id = message.new_queue_id()
        reply: str | None = policy.TEMPORARY_FAILURE
        raw = b""
        to_junk: bool | frozenset[int] = False
        notes: list[str] = []  # what the inbound checks found, for this message's one log line
        try:
            raw = message.normalise_line_endings(envelope.original_content or b"")
            reply, raw = self._checked(session, envelope, raw)
            if reply is None and self._from_outside(server.client_ip):
                reply, raw, to_junk = await self._inbound_checks(server, session, envelope, raw, queue_id, notes)
            elif reply is None:
                # RFC 8601 5: only our MX's own checks may speak under our authserv-id (the webmail shows them).
                raw = ar_results.remove_forged(raw, self.hostname)[0]
            if reply is None:
                reply = await self._deliver(server, session, envelope, queue_id, raw, to_junk)
        except Exception:
            # Never a 5xx for our own failure: the sending server keeps the message and retries.
            log.exception("smtp internal error queue_id=%s client=%s", queue_id, server.client_ip)
            reply = policy.TEMPORARY_FAILURE
        server.data_logged = True
        counted = None if self.role.submission else tally.outcome(reply, bool(to_junk))
        if counted and envelope.rcpt_tos:
            self.tally.count(envelope.rcpt_tos, counted)
        log.info(
            "smtp message queue_id=%s listener=%s client=%s sender=<%s> recipients=%s size=%d result=%r%s%s",
            queue_id,
            self.role.name,
            server.client_ip,
            _sender(envelope),
            ",".join(envelope.rcpt_tos),
            len(raw),
            reply,
            " folder=Junk" if to_junk else "",
            "".join(f" {note}" for note in notes),
        )
        return reply

    def _checked(self, session: Session, envelope: MailsiteEnvelope, raw: bytes) -> tuple[str | None, bytes]:
        """Refusals decided from the bytes alone, and the submission rewrites (Bcc, Message-ID, Date)."""
        if policy.loop_detected(message.count_fields(raw, b"Received")):
            return policy.LOOP_DETECTED, raw
        if not self.role.submission:
            return None, raw
        try:
            authors = read_authors(raw)
        except AmbiguousAuthor as exc:
            return policy.ambiguous_from(str(exc)), raw
        reply = policy.check_from_header(authors, envelope.own_addresses, delimiter=self.delimiter)
        if reply:
            return reply, raw
        envelope.author_domain = author_domain(authors)
        # Bcc recipients come from the envelope only; the header must reach nobody (RFC 5322 3.6.3).
        raw = message.remove_field(raw, b"Bcc")
        added = b""
        if not message.has_field(raw, b"Message-ID"):
            added += b"Message-ID: " + message.new_message_id(self.hostname) + b"\r\n"
        if not message.has_field(raw, b"Date"):
            added += b"Date: " + message.date_value() + b"\r\n"
        return None, added + raw

    # --- Sender authentication and junk scoring at the MX (mailauth) -----------------------------------------

    def _from_outside(self, client_ip: str) -> bool:
        """MX only: submission is authenticated, and trusted networks are ours (MAILSITE_TRUSTED_NETWORKS)."""
        if self.role.submission:
            return False
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return True
        return not any(address in network for network in settings.MAILSITE_TRUSTED_NETWORKS)

    async def connection_refusal(self, server: MailsiteSMTP) -> str | None:
        """The greeting instead of 220 for a client on a DNS blocklist (MX only, not trusted networks), asked
        off the loop before the greeting, as Postfix's postscreen does; None to greet as usual."""
        if not settings.MAILSITE_DNSBL_ZONES or not self._from_outside(server.client_ip):
            return None
        zone = await asyncio.get_running_loop().run_in_executor(
            verify.executor(),
            functools.partial(
                dnsbl.listing_zone,
                server.client_ip,
                settings.MAILSITE_DNSBL_ZONES,
                timeout=settings.MAILSITE_DNS_TIMEOUT,
            ),
        )
        if zone is None:
            return None
        log.info("smtp refused listener=%s client=%s reason=dnsbl zone=%s", self.role.name, server.client_ip, zone)
        return policy.dnsbl_listed(server.client_ip, zone)

    async def _inbound_checks(
        self,
        server: MailsiteSMTP,
        session: Session,
        envelope: MailsiteEnvelope,
        raw: bytes,
        queue_id: str,
        notes: list[str],
    ) -> tuple[str | None, bytes, bool | frozenset[int]]:
        """SPF, DKIM, ARC and DMARC (in a worker thread), our domains and the junk score, all at once; then
        the MX policy. Returns the refusal or the bytes to store (with our Authentication-Results in place of
        any claiming to be ours, and our spam fields), and where it goes to Junk: True for every recipient,
        or the accounts whose own junk statistics say so."""
        sender = _sender(envelope)
        claimed = claims.read(raw)
        facts = verify.Envelope(
            ip=server.client_ip, helo=session.host_name or "", sender=sender, author_domains=claimed.author_domains
        )
        account_ids = sorted({pk for resolved in envelope.resolutions.values() for pk in resolved.account_ids})
        senders = claims.sender_addresses(sender, claimed)
        checks: list = [junk.score(raw, facts, senders, envelope.rcpt_tos, account_ids, queue_id)]
        if settings.MAILSITE_AUTH_VERIFY:
            checks.append(verify.verify_off_loop(raw, facts))
            checks.append(self.local_domains.among(claims.with_sender(sender, claimed)))
        spam, *authentication = await asyncio.gather(*checks)
        decision = policy.AuthDecision()
        if authentication:
            verdict, local = authentication
            decision = policy.authentication_decision(
                verdict,
                local,
                reject_spf_fail=settings.MAILSITE_REJECT_SPF_FAIL,
                reject_dkim_fail=settings.MAILSITE_REJECT_DKIM_FAIL,
            )
            notes.append(f"auth=[{'; '.join(verdict.resinfos())}]")
        if decision.reply:
            return decision.reply, raw, False
        scored = policy.spam_decision(
            None if spam is None else spam.score,
            junk_score=settings.MAILSITE_SPAM_JUNK_SCORE,
            reject_score=settings.MAILSITE_SPAM_REJECT_SCORE,
        )
        if spam is not None and (spam.score is not None or spam.spamicity):
            notes.append(f"junk={spam.engine}:{spam.score if spam.score is not None else dict(spam.spamicity)}")
        if scored.reply:
            metrics.SPAM_VERDICTS.labels(spam.engine if spam is not None else "none", "reject").inc()
            return scored.reply, raw, False
        added = b""
        raw, forged = ar_results.remove_forged(raw, self.hostname)
        if forged:
            notes.append(f"forged-authentication-results-removed={forged}")
        if authentication:
            added += verdict.header_field(self.hostname)
        # DMARC quarantine holds for every recipient; junk scores and lists are weighed per account.
        to_junk: bool | frozenset[int] = decision.junk
        if spam is not None:
            raw = junk.remove_spam_fields(raw)
            added += junk.fields_for(spam, account_ids, junk_score=settings.MAILSITE_SPAM_JUNK_SCORE)
            to_junk = to_junk or spam.junk_for(account_ids, message_is_junk=scored.junk)
        metrics.SPAM_VERDICTS.labels(*_verdict(spam, account_ids, scored.junk)).inc()
        return None, added + raw, to_junk

    # --- end of sender authentication and junk scoring --------------------------------------------------------

    async def _deliver(
        self,
        server: MailsiteSMTP,
        session: Session,
        envelope: MailsiteEnvelope,
        queue_id: str,
        raw: bytes,
        junk: bool | frozenset[int] = False,
    ) -> str:
        received = message.received_field(
            helo=session.host_name or "unknown",
            ip=server.client_ip,
            hostname=self.hostname,
            protocol=policy.with_protocol(
                extended=session.extended_smtp,
                tls=server.tls_active,
                authenticated=bool(session.authenticated),
                smtputf8=envelope.smtp_utf8,
            ),
            queue_id=queue_id,
            recipients=envelope.rcpt_tos,
            tls_version=server.tls_version(),
        )
        try:
            if self.role.submission:
                # Local copies and the outbound queue (remote recipients, alias forwards) in one transaction.
                report = await asyncdb.call(
                    actions.submit_from_smtp,
                    received + raw,
                    _sender(envelope),
                    envelope.rcpt_tos,
                    author_domain=envelope.author_domain,
                    requests=_requests(envelope),
                )
            else:
                report = await self.groups.deliver(
                    received + raw,
                    _sender(envelope),
                    envelope.rcpt_tos,
                    envelope.resolutions,
                    junk,
                    _requests(envelope),
                )
        except MimeTooDeep:
            return policy.MIME_TOO_DEEP
        except HeaderTooLarge:
            return policy.HEADER_TOO_LARGE
        if report.refused is not None:
            return policy.refused_by_filter(report.refused)
        results = {rcpt: str(status) for rcpt, status in report.results.items()}
        return policy.delivery_reply(queue_id, results, relayed=self.role.submission)

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp session error: %s", error.__class__.__name__, exc_info=error)
        return policy.TEMPORARY_FAILURE
