"""The text of a message's full-text search document (PostgreSQL's `search_document` column).

PostgreSQL builds the document from the message's columns with `SQL`. That reads ASCII text as the index
should. A message with
any other letter stores `words(...)`, the same text folded in Python (`mailcore.search_words`: accents removed,
CJK split into bigrams), in `Message.search_words`, and the column indexes that instead. Plain ASCII mail, most
mail, costs a delivery nothing more.

The column is written after delivery (migration 0022): the writers leave it NULL, and `mailboxes.index_text`
fills it in batches (`actions.text_index.index_search_documents`), within seconds of delivery. `matches` is
the condition a search uses: the stored document through its GIN index, or, for a message not indexed yet, the
document computed on the fly (those few are found through the partial index `message_unindexed`), so a search
finds a message as soon as it is stored, with the same words either way.
"""

from __future__ import annotations

from mailcore.mime import MimePart, attachment_names
from mailcore.search_words import fold, needs_folding

# Addresses appear twice: as written (the parser keeps "alice@example.com" as one email token) and with "@", "."
# and angle brackets turned into spaces, so "alice" or "example" finds them too.
SQL = (
    "to_tsvector('simple'::regconfig, CASE WHEN search_words <> '' THEN search_words ELSE "
    "subject || ' ' || from_name || ' ' || from_address || ' ' || translate(from_address, '@.', '  ') || ' ' || "
    "to_addresses || ' ' || translate(to_addresses, '@.<>', '    ') || ' ' || cc_addresses || ' ' || "
    "translate(cc_addresses, '@.<>', '    ') || ' ' || search_text END)"
)


def matches(table: str, tsquery: str) -> str:
    """SQL true for the messages (`table`) whose document matches `tsquery`, a tsquery expression with one
    parameter, which the condition takes twice. `SQL` names the message's columns unqualified: the queries it
    goes in read no other table with such columns."""
    return f"({table}.search_document @@ {tsquery} OR ({table}.search_document IS NULL AND {SQL} @@ {tsquery}))"


# The index message_attachments carries the names, and an index entry must fit in a third of a page (2,704 bytes):
# 500 characters take at most 2,000 bytes in UTF-8.
ATTACHMENT_NAMES_CHARS = 500
_FROM_SPACES = str.maketrans("@.", "  ")
_TO_SPACES = str.maketrans("@.<>", "    ")


def words(subject: str, from_name: str, from_address: str, to: str, cc: str, text: str) -> str:
    """The folded document of a message with letters beyond ASCII, or "" when PostgreSQL's reading will do."""
    if not any(needs_folding(part) for part in (subject, from_name, from_address, to, cc, text)):
        return ""
    document = " ".join(
        (
            subject,
            from_name,
            from_address,
            from_address.translate(_FROM_SPACES),
            to,
            to.translate(_TO_SPACES),
            cc,
            cc.translate(_TO_SPACES),
            text,
        )
    )
    return fold(document)


def attachments(root: MimePart) -> str:
    """What `filename:` searches: the attachments' file names and types, cut to fit the index."""
    return attachment_names(root)[:ATTACHMENT_NAMES_CHARS]
