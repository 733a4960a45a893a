"""POP3 server (RFC 1939, RFC 2449 extensions): a sans-I/O protocol core and an asyncio listener."""
