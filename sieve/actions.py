"""What running a script decided for one message: the actions, in the order the script took them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keep:
    """Store in the Inbox (explicit keep, or the implicit keep of RFC 5228 2.10.2)."""

    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileInto:
    mailbox: str
    flags: tuple[str, ...] = ()
    create: bool = False  # RFC 5490 3.2 :create


@dataclass(frozen=True)
class Redirect:
    address: str


@dataclass(frozen=True)
class Discard:
    pass


@dataclass(frozen=True)
class Reject:
    reason: str
    extended: bool = False  # ereject: refuse in the SMTP dialogue where possible (RFC 5429 2.1)


@dataclass(frozen=True)
class Vacation:
    reason: str
    days: int
    subject: str | None = None
    from_: str | None = None
    addresses: tuple[str, ...] = ()
    handle: str = ""
    mime: bool = False


Action = Keep | FileInto | Redirect | Discard | Reject | Vacation


@dataclass
class Result:
    """The actions to carry out; when `error` is set, a limit or conflict stopped the script and `actions` is the
    implicit keep alone (RFC 5228 2.10.6)."""

    actions: list[Action]
    error: str | None = None
