"""importimap when things go wrong: a connection cut mid-FETCH, a server that lies about sizes and sends a
1 GB literal. Each message is imported or skipped with a reason; none is duplicated or lost."""

from __future__ import annotations

import contextlib
import io
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from mailboxes.models import Message
from tests.conftest import PASSWORD
from tests.transfer_support import contents, fill

SOURCE, TARGET = "src@source.test", "dst@dest.test"


def importimap(monkeypatch, port: int) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    out = io.StringIO()
    call_command(
        "importimap",
        TARGET,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--user",
        SOURCE,
        "--plain",
        "--password-stdin",
        stdout=out,
    )
    return out.getvalue()


class CuttingProxy:
    """Forwards loopback connections to `port`; the first one is cut after `cut_after` bytes from the server."""

    def __init__(self, port: int, cut_after: int) -> None:
        self.target = port
        self.cut_after = cut_after
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(("127.0.0.1", self.target))
            limit = self.cut_after if self.connections == 1 else None
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, limit), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                sent += len(data)
                if limit is not None and sent >= limit:
                    break
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxied(listeners) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(listeners("imapd")["imap"].port, cut_after=300_000)
    yield proxy
    proxy.close()


def test_a_connection_cut_mid_fetch_is_reopened_and_nothing_is_doubled(proxied, make_account, monkeypatch) -> None:
    source = make_account(SOURCE)
    target = make_account(TARGET)
    fill(source, 150)
    output = importimap(monkeypatch, proxied.port)
    assert proxied.connections == 2
    assert output.endswith("imported 150 messages, 0 imported before, skipped 0, 1 reconnects\n"), output
    assert contents(target, whole_seconds=True) == contents(source, whole_seconds=True)


MESSAGE = b"Subject: fine\r\n\r\nA small one.\r\n"


class LyingHandler(socketserver.StreamRequestHandler):
    """A scripted IMAP server: UID 2 is announced as 31 bytes and sent as a 1 GB literal; UID 4 is announced
    as over the limit; UID 5 comes with an INTERNALDATE that is no date; UIDs 1 and 3 are ordinary."""

    def send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def handle(self) -> None:
        try:
            self.send(b"* OK [CAPABILITY IMAP4rev1] liar ready\r\n")
            while line := self.rfile.readline(10_000):
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                command = rest.upper()
                if command.startswith(b"CAPABILITY"):
                    self.send(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
                elif command.startswith((b"LOGIN", b"NOOP")):
                    self.send(tag + b" OK done\r\n")
                elif command.startswith(b"LIST"):
                    self.send(b'* LIST () "/" INBOX\r\n' + tag + b" OK done\r\n")
                elif command.startswith(b"EXAMINE"):
                    self.send(b"* 5 EXISTS\r\n* OK [UIDVALIDITY 42] ok\r\n" + tag + b" OK [READ-ONLY] done\r\n")
                elif command.startswith(b"UID FETCH 1:*"):
                    sizes = {1: 31, 2: 31, 3: 31, 4: 10**9, 5: 31}
                    self.send(b"".join(b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (u, u, s) for u, s in sizes.items()))
                    self.send(tag + b" OK done\r\n")
                elif command.startswith(b"UID FETCH"):
                    for uid in (int(u) for u in command.split()[2].split(b",")):
                        if uid == 2:
                            self.send(b"* 2 FETCH (UID 2 FLAGS () BODY[] {1073741824}\r\n" + b"x" * 65536)
                            return  # the client hangs up rather than read it
                        date = b"yesterday" if uid == 5 else b"01-Jan-2024 10:00:00 +0000"
                        self.send(
                            b'* %d FETCH (UID %d FLAGS (\\Seen) INTERNALDATE "%s" BODY[] {%d}\r\n%s)\r\n'
                            % (uid, uid, date, len(MESSAGE), MESSAGE)
                        )
                    self.send(tag + b" OK done\r\n")
                elif command.startswith(b"LOGOUT"):
                    self.send(b"* BYE\r\n" + tag + b" OK done\r\n")
                    return
                else:
                    self.send(tag + b" BAD unknown\r\n")
        except OSError:
            pass


@pytest.fixture
def liar() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), LyingHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_server_lying_about_sizes_costs_a_skip_not_memory(liar, make_account, monkeypatch, settings) -> None:
    settings.MAILSITE_MAX_MESSAGE_SIZE = 1024 * 1024
    make_account(SOURCE)
    target = make_account(TARGET)
    output = importimap(monkeypatch, liar)
    assert "skipped INBOX UID 4: larger than 1048576 bytes" in output
    assert "skipped INBOX UID 2: the server sent more than 1048576 bytes for it" in output
    assert "skipped INBOX UID 5: the server's answer could not be used: not an IMAP date-time: b'yesterday'" in output
    assert output.endswith("imported 2 messages, 0 imported before, skipped 3, 2 reconnects\n"), output
    assert [bytes(m.body.raw) for m in Message.objects.filter(account=target).order_by("uid")] == [MESSAGE] * 2
    # The next run fetches only what is still missing: the three skipped, skipped again.
    again = importimap(monkeypatch, liar)
    assert again.endswith("imported 0 messages, 2 imported before, skipped 3, 2 reconnects\n"), again
