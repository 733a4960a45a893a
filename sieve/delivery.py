"""Sieve at final delivery: what the store does with one message for one recipient account.

The delivery action reads once for a group of messages the scripts of the accounts that have one to run (only
among those whose recipient lookup found one, `mailboxes.recipients.Expansion.filtered`: a group without pays
no query), decides for each message and such account before it takes its locks, stores the filed copies with
the Inbox copies, and sends what the scripts send (`Filing.send`) in its transaction once they are stored.
`decide` runs the admins' before-scripts and then the account's active script (a before-script that files,
discards or rejects the message ends the run: the user's script does not undo it) and turns the actions into a
`Decision`: the Inbox (with flags) or not, other folders (created first for :create), and messages for the
outbound queue (redirects, the vacation reply, a rejection notice).

Anything that goes wrong (a script that no longer compiles, a limit, a folder that does not exist, a redirect
loop) is logged and ends in the implicit keep: the message is stored in the Inbox, never lost, never twice.
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from mailboxes import actions
from mailboxes.actions import queueing
from mailboxes.actions.errors import ServiceError
from mailboxes.actions.locks import holding
from mailboxes.models import Account, Domain, Mailbox, MessageBody
from mailboxes.recipients import DeliveryReport, RecipientStatus, Resolution, expansion
from mailcore.dsn import RecipientReport, build_dsn
from mailcore.mime import ParsedMessage
from sieve import vacation
from sieve.actions import Discard, FileInto, Keep, Redirect, Reject, Result, Vacation
from sieve.errors import SieveError
from sieve.interpreter import Environment, run
from sieve.message import MessageView
from sieve.models import BeforeScript, SieveScript, VacationReply
from sieve.validate import Script, compile_script

log = logging.getLogger("mail.sieve")

# A message that has been redirected this many times by our users is not redirected again (loop protection);
# nor is one that this account redirected before.
MAX_REDIRECT_HOPS = 5
REDIRECT_HEADER = b"X-Sieve-Redirected-By"


@dataclass(frozen=True)
class Outgoing:
    raw: bytes
    sender: str
    recipients: tuple[str, ...]
    author_domain: str | None  # DKIM-sign for this domain (ours), or None for mail we do not author


@dataclass(frozen=True)
class PendingReply:
    """A vacation reply, sent only if the log says this sender was not answered within the period."""

    account_id: int
    sender: str
    key: str
    days: int
    now: datetime.datetime
    reply: Outgoing


@dataclass
class Decision:
    inbox: bool = True
    inbox_flags: tuple[str, ...] = ()
    folders: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)  # (folder id, flags)
    outbound: list[Outgoing] = field(default_factory=list)
    vacation: PendingReply | None = None
    rejected: str | None = None  # the reason of a reject or ereject (RFC 5429)
    notice: Outgoing | None = None  # its rejection notice (also in `outbound`); none to the null sender

    @property
    def plain(self) -> bool:
        """Nothing but the Inbox without flags: what delivery does without Sieve."""
        return self.inbox and not self.inbox_flags and not self.folders and not self.outbound and not self.vacation

    @property
    def only_rejects(self) -> bool:
        """A rejection and nothing else that stores or sends the message: the MX may refuse it instead."""
        others = [outgoing for outgoing in self.outbound if outgoing is not self.notice]
        return self.rejected is not None and not (self.inbox or self.folders or others or self.vacation)

    def refuse(self) -> None:
        """The SMTP dialogue refuses the message (RFC 5429 2.1.1): the sender learns it from the reply, so no
        notice goes out."""
        self.outbound = [outgoing for outgoing in self.outbound if outgoing is not self.notice]
        self.notice = None

    def settle(self) -> None:
        """Decide the pending vacation reply against the log (RFC 5230 4.1). Delivery does it under its locks:
        after the recipient's account row, as every other write of the delivery, so two deliveries that
        answer the same sender wait for each other in the one lock order."""
        pending, self.vacation = self.vacation, None
        if pending is None:
            return
        if _vacation_due(pending.account_id, pending.sender, pending.key, pending.days, pending.now):
            self.outbound.append(pending.reply)


@functools.lru_cache(maxsize=256)
def _compiled(content: str) -> Script:
    return compile_script(content)


# A script files into the same few folders message after message: each name is checked and normalised once (a name
# that is refused raises each time; exceptions are not kept).
@functools.lru_cache(maxsize=1024)
def _folder_name(name: str) -> str:
    return actions.normalise_folder_name(name)


class _Owner:
    """A recipient account with scripts to run: its address and domain, its compiled scripts in order, and its
    folders (name -> id), read with the group's other owners in one statement (`_owners`)."""

    def __init__(
        self, account_id: int, address: str, domain: str, programs: list[tuple[str, Script]], folders: dict[str, int]
    ) -> None:
        self.account_id = account_id
        self.address = address
        self.domain = domain
        self.programs = programs
        self.folders = folders
        self.created: set[int] = set()  # folders made for :create in this transaction (no one else sees them)
        self.needs_folders = any("mailbox" in script.required for _, script in programs)
        self._names: frozenset[str] | None = None

    @property
    def mailboxes(self) -> frozenset[str]:
        """The folder names mailboxexists sees (RFC 5490 3.1): none unless a script requires "mailbox"."""
        if self._names is None:
            self._names = frozenset(self.folders) if self.needs_folders else frozenset()
        return self._names

    def folder_id(self, name: str, create: bool) -> int | None:
        """The folder a fileinto names (created with its parents for :create); None for the Inbox."""
        name = _folder_name(name)
        if name == "INBOX":
            return None
        if name not in self.folders and create:
            known = set(self.folders.values())
            actions.create_mailbox(Account.objects.get(pk=self.account_id), name)
            self.folders = dict(Mailbox.objects.filter(account_id=self.account_id).values_list("name", "pk"))
            self.created |= set(self.folders.values()) - known
            self._names = None
        if name not in self.folders:
            raise ServiceError(f"there is no folder {name!r} (fileinto without :create)")
        return self.folders[name]


# Everything a group's script runs read, in one round trip: the accounts (address, domain), every enabled
# before-script, the accounts' active scripts, and their folders (for fileinto and mailboxexists). Plain SQL, as
# the recipient lookup (mailboxes/recipients.py): it runs for every delivery group with a script. Columns: kind,
# owner (account, or the before-script's domain), name (address, script or folder), text (domain name or script),
# number (the account's domain, or the folder's id).
_OWNERS_SQL = f"""
    SELECT 'account', a.id, a.address, d.name, a.domain_id
    FROM {Account._meta.db_table} a JOIN {Domain._meta.db_table} d ON d.id = a.domain_id WHERE a.id IN ({{ids}})
    UNION ALL
    SELECT 'before', b.domain_id, b.name, b.content, 0 FROM {BeforeScript._meta.db_table} b WHERE b.enabled
    UNION ALL
    SELECT 'own', s.account_id, s.name, s.content, 0
    FROM {SieveScript._meta.db_table} s WHERE s.account_id IN ({{ids}}) AND s.active
    UNION ALL
    SELECT 'folder', m.account_id, m.name, '', m.id FROM {Mailbox._meta.db_table} m WHERE m.account_id IN ({{ids}})
"""


def _owners(account_ids: set[int] | list[int]) -> dict[int, _Owner]:
    """The accounts among these that have a script to run (an active script of their own, or an admin's
    before-script for every domain or theirs), with their scripts and folders: one statement."""
    if not account_ids:
        return {}
    ids = sorted(set(account_ids))
    with connection.cursor() as cursor:
        cursor.execute(_OWNERS_SQL.format(ids=", ".join(["%s"] * len(ids))), [*ids, *ids, *ids])
        rows = cursor.fetchall()
    accounts: dict[int, tuple[str, str, int]] = {}
    before: list[tuple[str, int | None, str]] = []
    own: dict[int, tuple[str, str]] = {}
    folders: dict[int, dict[str, int]] = {}
    for kind, owner_id, name, text, number in rows:
        if kind == "account":
            accounts[owner_id] = (name, text, number)
        elif kind == "before":
            before.append((name, owner_id, text))
        elif kind == "own":
            own[owner_id] = (name, text)
        else:
            folders.setdefault(owner_id, {})[name] = number
    before.sort(key=lambda row: (row[1] is not None, row[1] or 0, row[0]))  # global ones first, then by domain
    owners: dict[int, _Owner] = {}
    for account_id, (address, domain, domain_id) in accounts.items():
        labelled = [
            (f"before-script {name!r}", content) for name, owner, content in before if owner in (None, domain_id)
        ]
        if account_id in own:
            name, content = own[account_id]
            labelled.append((f"script {name!r}", content))
        programs: list[tuple[str, Script]] = []
        for label, content in labelled:
            try:
                programs.append((label, _compiled(content)))
            except SieveError as exc:
                log.warning("sieve: %s of %s does not compile, skipped: %s", label, address, exc)
        if programs:
            owners[account_id] = _Owner(account_id, address, domain, programs, folders.get(account_id, {}))
    return owners


def filtered_accounts(account_ids: set[int] | list[int]) -> set[int]:
    """The accounts among these that have a script to run."""
    return set(_owners(account_ids))


def folders_to_lock(account_ids: set[int] | list[int]) -> list[int]:
    """Every folder of the accounts among these that have a script to run: for actions that take their locks
    before they know what the scripts will decide (`lock_up_front`)."""
    return [pk for owner in _owners(account_ids).values() for pk in owner.folders.values()]


def _run_all(programs: list[tuple[str, Script]], view: MessageView, env: Environment, address: str) -> Result:
    combined: list = []
    for index, (label, script) in enumerate(programs):
        result = run(script, view, env)
        if result.error:
            log.warning("sieve: %s of %s failed, message kept in the Inbox: %s", label, address, result.error)
            return Result([Keep()], result.error)
        last = index == len(programs) - 1
        explicit = [a for a in result.actions if a != Keep() or last]
        combined.extend(a for a in explicit if a not in combined)
        if not last and not any(isinstance(a, Keep) for a in result.actions):
            return Result(combined)  # a before-script took the message away from the Inbox: it decides
    return Result(combined or [Keep()])


def _without_return_path(raw: bytes) -> bytes:
    # The Return-Path we added at delivery belongs to this delivery, not to the copy sent on (RFC 5321 4.4).
    if raw[:12].lower() == b"return-path:":
        end = raw.find(b"\n")
        return raw[end + 1 :] if end >= 0 else raw
    return raw


def _redirected(raw: bytes, view: MessageView, address: str) -> bytes | None:
    hops = [value.strip().lower() for name, value in view.fields if name == REDIRECT_HEADER.decode().lower()]
    if len(hops) >= MAX_REDIRECT_HOPS or address.encode().lower() in hops:
        return None
    return REDIRECT_HEADER + b": " + address.encode() + b"\r\n" + _without_return_path(raw)


def _vacation_due(account_id: int, sender: str, key: str, days: int, now: datetime.datetime) -> bool:
    """Record the reply unless one was sent to this sender with this handle in the last `days` (RFC 5230 4.1);
    one statement, so two deliveries at once cannot both answer."""
    table = VacationReply._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (account_id, sender, handle, sent, quiet_until) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (account_id, sender, handle) DO UPDATE SET sent = excluded.sent, "
            f"quiet_until = excluded.quiet_until WHERE {table}.quiet_until <= excluded.sent RETURNING id",
            [account_id, sender.lower()[:320], key, now, now + datetime.timedelta(days=days)],
        )
        return cursor.fetchone() is not None


# The MX's junk verdict (mailauth/junk.py): its X-Spam-Status field, the only one left in a message it scored.
_SPAM_STATUS = re.compile(r"score=(-?[0-9]+(?:\.[0-9]+)?)\s+required=(-?[0-9]+(?:\.[0-9]+)?)")


def verdict_percent(view: MessageView) -> int | None:
    """The junk verdict as spamtest's percentage: 0 for a score of 0 or below, 50 at the junk threshold, 100 at
    twice the threshold or more; None for a message that was not scored."""
    for value in view.header("x-spam-status")[:1]:
        found = _SPAM_STATUS.search(value)
        if found is not None:
            score, required = float(found[1]), float(found[2])
            if required <= 0:
                return 100 if score >= required else 0
            return round(min(max(50 * score / required, 0), 100))
    return None


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def decide(
    account_id: int,
    raw: bytes,
    parsed: ParsedMessage,
    envelope_from: str,
    envelope_to: str,
    *,
    spam_percent: int | None = None,
    now: datetime.datetime | None = None,
) -> Decision:
    """Run the account's scripts on one message, in a transaction (outside delivery: tests, tools)."""
    owner = _owners([account_id]).get(account_id)
    if owner is None:
        return Decision()
    view = MessageView(raw, parsed)
    decision = _decide(owner, view, envelope_from, envelope_to, spam_percent=spam_percent, now=now)
    decision.settle()
    return decision


def _decide(
    owner: _Owner,
    view: MessageView,
    envelope_from: str,
    envelope_to: str,
    *,
    spam_percent: int | None = None,
    now: datetime.datetime | None = None,
) -> Decision:
    now = now or timezone.now()
    if spam_percent is None:
        spam_percent = verdict_percent(view)
    env = Environment(envelope_from, envelope_to or owner.address, owner.mailboxes, spam_percent, now)
    result = _run_all(owner.programs, view, env, owner.address)
    try:
        # Its only write, creating a folder, is an action with its own savepoint: whatever fails here (a folder
        # name, a reply that cannot be built) leaves the delivery's transaction usable, and the message is kept.
        return _carry_out(result, owner, view.raw, view, env)
    except (ServiceError, SieveError) as exc:
        log.warning("sieve: actions for %s failed, message kept in the Inbox: %s", owner.address, exc)
    except Exception:
        log.exception("sieve: actions for %s failed, message kept in the Inbox", owner.address)
    return Decision()


def _carry_out(result: Result, owner: _Owner, raw: bytes, view: MessageView, env: Environment) -> Decision:
    decision = Decision(inbox=False)
    assert env.now is not None
    for action in result.actions:
        match action:
            case Keep(flags=flags) | FileInto(mailbox="INBOX", flags=flags):
                decision.inbox = True
                decision.inbox_flags = tuple(dict.fromkeys([*decision.inbox_flags, *flags]))
            case FileInto(mailbox=name, flags=flags, create=create):
                folder = owner.folder_id(name, create)
                if folder is None:
                    decision.inbox = True
                    decision.inbox_flags = tuple(dict.fromkeys([*decision.inbox_flags, *flags]))
                elif all(folder != f for f, _ in decision.folders):
                    decision.folders.append((folder, flags))
            case Redirect(address=address):
                copy = _redirected(raw, view, owner.address)
                if copy is None:
                    log.warning("sieve: redirect loop for %s to %s, message kept", owner.address, address)
                    decision.inbox = True
                    continue
                decision.outbound.append(Outgoing(copy, env.envelope_from, (address,), None))
            case Vacation():
                decision.vacation = _vacation(action, owner, view, env)
            case Reject(reason=reason):
                decision.rejected = reason
                decision.notice = _rejection(reason, raw, env)
                if decision.notice is not None:
                    decision.outbound.append(decision.notice)
            case Discard():
                pass
    return decision


def _vacation(action: Vacation, owner: _Owner, view: MessageView, env: Environment) -> PendingReply | None:
    assert env.now is not None
    own = [owner.address, env.envelope_to, *action.addresses]
    why_not = vacation.refusal(env.envelope_from, view, own)
    if why_not is not None:
        log.info("sieve: no vacation reply from %s to %r: %s", owner.address, env.envelope_from, why_not)
        return None
    reply = vacation.build_reply(
        action, view, recipient=owner.address, to=env.envelope_from, now=env.now, hostname=settings.MAILSITE_HOSTNAME
    )
    # Signed only when the From is the account's own domain: a :from elsewhere is not ours to vouch for.
    sign = owner.domain if _domain_of(action.from_ or owner.address) == owner.domain else None
    # RFC 5230 5.1 / RFC 3834 3.3: the reply goes out with the null sender, so nothing answers it back.
    outgoing = Outgoing(reply, "", (env.envelope_from,), sign)
    return PendingReply(
        owner.account_id, env.envelope_from, vacation.handle_key(action), action.days, env.now, outgoing
    )


def _rejection(reason: str, raw: bytes, env: Environment) -> Outgoing | None:
    if not env.envelope_from:
        return None  # RFC 5429 2.1: never to the null sender
    assert env.now is not None
    notice = build_dsn(
        reporting_mta=settings.MAILSITE_HOSTNAME,
        to=env.envelope_from,
        original=_without_return_path(raw),
        recipients=[
            RecipientReport(env.envelope_to, "failed", "5.7.1", f"rejected by the recipient's filter: {reason}", False)
        ],
        arrival=env.now,
        now=env.now,
    )
    return Outgoing(notice, "", (env.envelope_from,), None)


def send(decision: Decision) -> None:
    """Queue the decision's outgoing messages; within the delivery transaction (attempts start on commit)."""
    for outgoing in decision.outbound:
        queueing.enqueue(outgoing.raw, outgoing.sender, outgoing.recipients, author_domain=outgoing.author_domain)


class Incoming(Protocol):
    """What the delivery action knows of one message of a group (mailboxes/actions/delivery.py `_Incoming`)."""

    stored: bytes
    sender: str
    parsed: ParsedMessage | None
    body: MessageBody | None
    charged: list[int]
    resolutions: list[Resolution]
    report: DeliveryReport
    refusable: bool  # the caller can refuse it in the SMTP dialogue (the MX)


def _scripted(items: Sequence[Incoming]) -> set[int]:
    """The accounts the items' recipient lookups found a script for (`Expansion.filtered`)."""
    return {
        pk
        for item in items
        for resolution in item.resolutions
        if resolution.expansion is not None
        for pk in resolution.expansion.filtered
    }


Item = TypeVar("Item", bound=Incoming)


class Filing(Generic[Item]):
    """Sieve for one delivery group, inside the delivery action.

    Created before the action's locks: it runs each filtered account's scripts on each of its messages (folders
    that :create asks for are created here), takes the pairs that do not go to the Inbox out of `inboxes`
    (account id -> its messages in the Inbox path), lists the `copies` for other folders, which the action stores
    with the Inbox copies, and names the accounts the action must lock. After the copies, `send` sends the
    outgoing mail.

    Outgoing mail to our own domains (a redirect, a vacation reply, a rejection notice) goes straight into the
    store by a delivery nested in this transaction, rather than through the relay and our own MX, when the
    action has taken no lock yet: the accounts it reaches (their Inboxes, and every folder of those with a script)
    are then named here, to join the action's one `lock()` call. Those nested deliveries already hold their locks,
    so what their own scripts send goes through the relay as before; loop protection (`X-Sieve-Redirected-By`)
    holds either way. A nested delivery that fails is rolled back to its savepoint and the message goes to the
    relay instead, as does one for an address with no room.
    """

    def __init__(self, items: Sequence[Item], inboxes: dict[int, list[Item]]) -> None:
        self.decisions: dict[tuple[int, int], Decision] = {}
        self.accounts: set[int] = set()
        self.copies: list[tuple[Item, int, int, tuple[str, ...]]] = []  # item, account, folder, flags
        # Only accounts whose address lookup found a script (at RCPT, for the MX) are asked for it again.
        owners = _owners(set(inboxes) & _scripted(items))
        self.owners = owners
        for item in items:
            if item.parsed is None:
                continue
            view: MessageView | None = None  # one for all its recipients' scripts: fields decoded once
            for resolution in item.resolutions:
                for account_id in resolution.account_ids:
                    if account_id not in owners or (id(item), account_id) in self.decisions:
                        continue
                    view = view or MessageView(item.stored, item.parsed)
                    decision = _decide(owners[account_id], view, item.sender, resolution.address)
                    self.decisions[id(item), account_id] = decision
                    if decision.plain:
                        continue
                    self.accounts.add(account_id)
                    if not decision.inbox:
                        inboxes[account_id] = [i for i in inboxes.get(account_id, []) if i is not item]
                        # Delivered as the script said (filed, redirected or discarded): not a refused recipient.
                        item.charged.append(account_id)
                    for folder_id, flags in decision.folders:
                        self.copies.append((item, account_id, folder_id, flags))
            if item.refusable:
                item.report.refused = self._refusal(item)
        for account_id in [a for a, group in inboxes.items() if not group]:
            del inboxes[account_id]
        self.local: set[str] = set()  # our addresses that outgoing mail goes to, straight into the store
        self.reached: set[int] = set()  # their accounts, locked with the action's others
        self.reached_folders: set[int] = set()  # every folder of those with a script
        if self.decisions and not holding():
            self._reach([d for d in self.decisions.values() if not d.plain])

    def _reach(self, decisions: list[Decision]) -> None:
        addresses = [rcpt for d in decisions for outgoing in d.outbound for rcpt in outgoing.recipients]
        addresses += [d.vacation.sender for d in decisions if d.vacation is not None]
        for address in dict.fromkeys(addresses):
            expanded = expansion(address)
            if expanded.found and expanded.accounts:
                self.local.add(address)
                self.reached |= set(expanded.accounts)
        self.accounts |= self.reached
        if self.reached:
            self.reached_folders = set(folders_to_lock(self.reached))

    def _refusal(self, item: Incoming) -> str | None:
        """The reason to refuse `item` with in the SMTP dialogue (RFC 5429 2.1.1), when the scripts reject it
        for every envelope recipient (each account an address reaches, and it forwards nowhere); then no notice
        goes out. SMTP has one DATA reply for all recipients (LMTP has one each): as Pigeonhole behind Postfix,
        a message rejected for some recipients only is accepted, and those send a rejection notice
        (RFC 5429 2.1.2) instead."""
        reasons: list[str] = []
        for resolution in item.resolutions:
            if resolution.external or not resolution.account_ids:
                return None
            for account_id in resolution.account_ids:
                decision = self.decisions.get((id(item), account_id))
                if decision is None or not decision.only_rejects:
                    return None
                assert decision.rejected is not None
                reasons.append(decision.rejected)
        if not reasons:
            return None
        for account_id in {pk for resolution in item.resolutions for pk in resolution.account_ids}:
            self.decisions[id(item), account_id].refuse()
        return reasons[0]

    @property
    def created(self) -> set[int]:
        """The folders made for :create in this transaction: no one else sees them, so they need no lock."""
        return set().union(*(owner.created for owner in self.owners.values()))

    def inbox_flags(self, item: Incoming, account_id: int) -> tuple[str, ...]:
        """The flags the scripts set for the message's Inbox copy (RFC 5232 :flags / setflag)."""
        decision = self.decisions.get((id(item), account_id))
        return decision.inbox_flags if decision is not None else ()

    def send(self) -> None:
        """The outgoing mail: redirects, vacation replies (decided against the log here), rejection notices. Call
        after the copies are stored, under the action's locks."""
        for decision in self.decisions.values():
            decision.settle()
            for outgoing in decision.outbound:
                self._send(outgoing)

    def _send(self, outgoing: Outgoing) -> None:
        local = [rcpt for rcpt in outgoing.recipients if rcpt in self.local]
        relayed = [rcpt for rcpt in outgoing.recipients if rcpt not in self.local]
        if local:
            try:
                with transaction.atomic():  # a savepoint: a failure leaves the message to the relay
                    report: DeliveryReport = actions.deliver(outgoing.raw, outgoing.sender, local)
            except Exception:
                log.exception("sieve: delivery into the store to %s failed, sent through the relay", local)
                relayed += local
            else:
                relayed += [rcpt for rcpt in local if report.results.get(rcpt) is not RecipientStatus.LOCAL]
                relayed += [rcpt for rcpt in report.forward if rcpt not in relayed]
        if relayed:
            queueing.enqueue(outgoing.raw, outgoing.sender, relayed, author_domain=outgoing.author_domain)
