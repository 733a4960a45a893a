"""ManageSieve (RFC 5804): `protocol` is the core without I/O, `server` the asyncio listener."""
