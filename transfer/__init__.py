"""Moving mail in and out: mbox (mboxrd) and Maildir readers and writers, and the IMAP import client.

`mbox`, `maildir`, `flags` and `imap_fetch` are pure (no Django, no sockets); `imap_source` is the blocking
IMAP client shell; `importer`/`exporter` connect them to the store through `mailboxes.actions`.
"""
