"""The only writers of the store: one function per change, one transaction each, locks in one global order.

By concern: `accounts` (domains, accounts, aliases, deletes), `auth` (sign-in), `delivery` (received and
submitted mail), `sending` (the webmail's send and drafts), `messages` (append, copy, move, expunge, delete),
`flags`, `folders`, `recycling` (the recycle bin), `queueing` and `outbound` (the relay's queue). `locks` holds
the `action` decorator and the one helper that takes row locks; `counters` and `storing` are the pieces actions
share.

Callers import this package and use the names below: `actions.deliver(...)`, `actions.set_flags(...)`.
"""

from mailboxes.actions.accounts import (
    ACCOUNT_SETTINGS,
    StillQueued,
    create_account,
    create_alias,
    create_domain,
    delete_account,
    delete_alias,
    delete_domain,
    set_password,
    update_account,
    update_alias,
    update_domain,
)
from mailboxes.actions.auth import AuthResult, authenticate
from mailboxes.actions.delivery import Delivery, JunkFor, deliver, deliver_many, submit, submit_from_smtp
from mailboxes.actions.errors import (
    AlreadyExists,
    HasChildren,
    InvalidName,
    NotFound,
    OverQuota,
    ServiceError,
    UnknownDomain,
)
from mailboxes.actions.flags import SYSTEM_FLAGS, FlagMode, flag_names, set_flags, store_flags
from mailboxes.actions.folders import (
    create_mailbox,
    delete_mailbox,
    normalise_folder_name,
    rename_mailbox,
    set_subscribed,
)
from mailboxes.actions.messages import append, copy, delete_messages, expunge, move
from mailboxes.actions.recycling import purge_recycled, restore
from mailboxes.actions.sending import NotSent, save_draft, send
from mailboxes.actions.storing import with_return_path
from mailboxes.recipients import DeliveryReport, RecipientStatus, Resolution, is_local_domain, resolve_recipient

__all__ = [
    "ACCOUNT_SETTINGS",
    "SYSTEM_FLAGS",
    "AlreadyExists",
    "AuthResult",
    "Delivery",
    "DeliveryReport",
    "FlagMode",
    "HasChildren",
    "InvalidName",
    "JunkFor",
    "NotFound",
    "NotSent",
    "OverQuota",
    "RecipientStatus",
    "Resolution",
    "ServiceError",
    "StillQueued",
    "UnknownDomain",
    "append",
    "authenticate",
    "copy",
    "create_account",
    "create_alias",
    "create_domain",
    "create_mailbox",
    "delete_account",
    "delete_alias",
    "delete_domain",
    "delete_mailbox",
    "delete_messages",
    "deliver",
    "deliver_many",
    "expunge",
    "flag_names",
    "is_local_domain",
    "move",
    "normalise_folder_name",
    "purge_recycled",
    "rename_mailbox",
    "resolve_recipient",
    "restore",
    "save_draft",
    "send",
    "set_flags",
    "set_password",
    "set_subscribed",
    "store_flags",
    "submit",
    "submit_from_smtp",
    "update_account",
    "update_alias",
    "update_domain",
    "with_return_path",
]
