"""COMPRESS=DEFLATE (RFC 4978) over a real imapd: every byte after the tagged OK is raw deflate, both ways."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest

from tests.imap_support import RawClient, Server, deliver, message, start


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


class Deflated:
    def __init__(self, client: RawClient) -> None:
        self.sock = client.sock
        self.deflate = zlib.compressobj(wbits=-15)
        self.inflate = zlib.decompressobj(wbits=-15)
        self.buffer = b""
        self.wire = 0  # compressed bytes received

    def command(self, tag: str, line: bytes) -> bytes:
        self.sock.sendall(
            self.deflate.compress(tag.encode() + b" " + line + b"\r\n") + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        )
        while (b"\r\n" + tag.encode() + b" ") not in b"\r\n" + self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, self.buffer
            self.wire += len(chunk)
            self.buffer += self.inflate.decompress(chunk)
        data, self.buffer = self.buffer, b""
        return data


def test_compress_deflate(server: Server) -> None:
    for n in range(20):
        deliver(message(f"message {n}", "The same words again and again.\r\n" * 50))
    client = RawClient(server)
    assert b"COMPRESS=DEFLATE" in client.ok("CAPABILITY")
    assert client.command("COMPRESS LZ77").split(b" ")[1] == b"BAD"
    assert client.command("COMPRESS DEFLATE").endswith(b" OK DEFLATE active\r\n")
    deflated = Deflated(client)
    assert deflated.command("s", b"SELECT INBOX").endswith(b"s OK [READ-WRITE] SELECT completed\r\n")
    data = deflated.command("f", b"FETCH 1:* (BODY.PEEK[])")
    assert data.count(b"The same words again and again.") == 20 * 50
    assert deflated.wire * 5 < len(data)
    assert deflated.command("c", b"COMPRESS DEFLATE").startswith(b"c NO [COMPRESSIONACTIVE]")
    # A literal sent compressed.
    raw = message("appended over deflate")
    data = deflated.command("a", b"APPEND INBOX {%d+}\r\n%s" % (len(raw), raw))
    assert b"a OK [APPENDUID " in data
