"""Errors the store's actions raise for requests they refuse; their text is safe to show to the user."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the store refuses; the message is safe to show to the user."""


class UnknownDomain(ServiceError):
    pass


class AlreadyExists(ServiceError):
    pass


class NotFound(ServiceError):
    pass


class InvalidName(ServiceError):
    pass


class HasChildren(InvalidName):
    """A folder with subfolders cannot be deleted (IMAP answers NO [HASCHILDREN], RFC 9051 6.3.5)."""


class OverQuota(ServiceError):
    pass
