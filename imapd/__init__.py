"""IMAP server (IMAP4rev1 subset with IDLE): a sans-I/O protocol core and an asyncio listener."""
