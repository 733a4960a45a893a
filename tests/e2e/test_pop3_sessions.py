"""POP3 end to end: real listeners, real PostgreSQL, Python's poplib and raw sockets."""

from __future__ import annotations

import poplib
import smtplib
import time

import psycopg
import pytest
from django.db import connection

from mailboxes import actions
from pop3d.locks import lock_key
from tests.conftest import PASSWORD
from tests.network import non_loopback_address
from tests.pop3_support import (
    ADDRESS,
    RawClient,
    client,
    deliver,
    eight_bit_mail,
    inbox,
    multipart_mail,
    stored,
    text_mail,
)


@pytest.fixture
def pop3(listeners, make_account):
    make_account(ADDRESS)
    return listeners("pop3d")


def retrieved(pop: poplib.POP3, number: int) -> bytes:
    """RETR's message with poplib's un-stuffing, lines rejoined with the CRLF they came with."""
    _, lines, _ = pop.retr(number)
    return b"".join(line + b"\r\n" for line in lines)


def logged_in(port: int, **options) -> poplib.POP3:
    pop = client(port, **options)
    pop.user(ADDRESS)
    pop.pass_(PASSWORD)
    return pop


def test_listing_and_retrieval_are_the_stored_bytes(pop3) -> None:
    deliver(text_mail("one"), eight_bit_mail(), multipart_mail())
    messages = stored()
    pop = logged_in(pop3["pop3"].port)
    assert pop.stat() == (3, sum(len(raw) for _, raw in messages))
    _, listing, _ = pop.list()
    assert listing == [f"{n} {len(raw)}".encode() for n, (_, raw) in enumerate(messages, 1)]
    uidvalidity = inbox().uidvalidity
    _, uidls, _ = pop.uidl()
    assert uidls == [f"{n} {uidvalidity}.{uid}".encode() for n, (uid, _) in enumerate(messages, 1)]
    for number, (_, raw) in enumerate(messages, 1):
        assert retrieved(pop, number) == raw
    _, head, _ = pop.top(2, 1)
    header, _, body = messages[1][1].partition(b"\r\n\r\n")
    assert head == [*header.split(b"\r\n"), b"", body.split(b"\r\n")[0]]
    _, head, _ = pop.top(3, 0)
    assert head == [*messages[2][1].partition(b"\r\n\r\n")[0].split(b"\r\n"), b""]
    assert pop.quit().startswith(b"+OK")


def test_uidl_is_stable_across_sessions(pop3) -> None:
    deliver(text_mail("one"), text_mail("two"))
    pop = logged_in(pop3["pop3"].port)
    first = pop.uidl()[1]
    pop.dele(1)
    pop.quit()
    pop = logged_in(pop3["pop3"].port)
    assert pop.uidl()[1] == [b"1 " + first[1].split(b" ")[1]]
    pop.quit()


def test_stls(pop3, tls_client_context) -> None:
    deliver(eight_bit_mail())
    pop = client(pop3["pop3"].port)
    assert "STLS" in pop.capa()
    pop.stls(tls_client_context)
    assert "STLS" not in pop.capa()
    pop.user(ADDRESS)
    pop.pass_(PASSWORD)
    assert retrieved(pop, 1) == stored()[0][1]
    pop.quit()


def test_pop3s(pop3, tls_client_context) -> None:
    deliver(multipart_mail())
    pop = logged_in(pop3["pop3s"].port, context=tls_client_context)
    assert "STLS" not in pop.capa()
    assert retrieved(pop, 1) == stored()[0][1]
    pop.quit()


def test_auth_plain(pop3, tls_client_context) -> None:
    deliver(text_mail("one"))
    pop = client(pop3["pop3s"].port, context=tls_client_context)
    assert pop.capa()["SASL"] == ["PLAIN"]
    # poplib's AUTH sends an initial response; its answer must be the login.
    assert pop._shortcmd("AUTH PLAIN " + _plain(ADDRESS, PASSWORD)).startswith(b"+OK Logged in")
    assert pop.stat()[0] == 1
    pop.quit()


def _plain(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_dele_and_quit_removes(pop3) -> None:
    deliver(text_mail("one"), text_mail("two"), text_mail("three"))
    keep = stored()[1]
    pop = logged_in(pop3["pop3"].port)
    pop.dele(1)
    pop.dele(3)
    assert pop.quit() == b"+OK Logging out, 2 messages deleted"
    assert stored() == [keep]


def test_dele_and_rset_keeps(pop3) -> None:
    deliver(text_mail("one"), text_mail("two"))
    before = stored()
    pop = logged_in(pop3["pop3"].port)
    pop.dele(1)
    pop.rset()
    pop.quit()
    assert stored() == before


def test_dropped_connection_deletes_nothing(pop3) -> None:
    deliver(text_mail("one"), text_mail("two"))
    before = stored()
    pop = logged_in(pop3["pop3"].port)
    pop.dele(1)
    pop.dele(2)
    pop.close()  # the connection drops without QUIT
    pop = _login_when_unlocked(pop3["pop3"].port)
    assert pop.stat()[0] == 2
    pop.quit()
    assert stored() == before


def _login_when_unlocked(port: int) -> poplib.POP3:
    """Log in as soon as the previous session's server side has ended (it notices the drop asynchronously)."""
    deadline = time.monotonic() + 10
    while True:
        pop = client(port)
        try:
            pop.user(ADDRESS)
            pop.pass_(PASSWORD)
            return pop
        except poplib.error_proto as exc:
            pop.close()
            if b"[IN-USE]" not in exc.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_second_session_is_in_use(pop3) -> None:
    deliver(text_mail("one"))
    first = logged_in(pop3["pop3"].port)
    second = client(pop3["pop3"].port)
    second.user(ADDRESS)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_(PASSWORD)
    first.quit()
    second.user(ADDRESS)
    assert second.pass_(PASSWORD).startswith(b"+OK")
    second.quit()


def test_lock_held_by_another_process_is_in_use(pop3) -> None:
    """Another listener process holds the maildrop: its lock is a PostgreSQL advisory lock on its connection."""
    if connection.vendor != "postgresql":
        pytest.skip("on SQLite the maildrop lock is per process")
    account_id = inbox().account_id
    params = connection.settings_dict
    with psycopg.connect(
        dbname=params["NAME"], user=params["USER"], host=params["HOST"], port=params["PORT"], autocommit=True
    ) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [lock_key(account_id)])
        pop = client(pop3["pop3"].port)
        pop.user(ADDRESS)
        with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
            pop.pass_(PASSWORD)
    # The other process is gone (its connection closed): the maildrop is free.
    pop.user(ADDRESS)
    assert pop.pass_(PASSWORD).startswith(b"+OK")
    pop.quit()


def test_mail_arriving_during_a_session_waits_for_the_next(pop3) -> None:
    deliver(text_mail("one"))
    pop = logged_in(pop3["pop3"].port)
    deliver(text_mail("two"))
    assert pop.stat()[0] == 1
    assert len(pop.uidl()[1]) == 1
    pop.quit()
    pop = logged_in(pop3["pop3"].port)
    assert pop.stat()[0] == 2
    pop.quit()


def test_message_removed_elsewhere_during_the_session(pop3) -> None:
    deliver(text_mail("one"), text_mail("two"))
    pop = logged_in(pop3["pop3"].port)
    box = inbox()
    actions.delete_messages(box.account, box.pk, [stored()[1][0]])  # as an IMAP EXPUNGE elsewhere would
    with pytest.raises(poplib.error_proto, match="no longer exists"):
        pop.retr(2)
    assert retrieved(pop, 1) == stored()[0][1]
    pop.quit()


def test_pipelined_commands(pop3) -> None:
    deliver(text_mail("one"), eight_bit_mail())
    messages = stored()
    raw = RawClient(pop3["pop3"].port)
    raw.send(f"CAPA\r\nUSER {ADDRESS}\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 1\r\nRETR 2\r\nDELE 1\r\nQUIT\r\n".encode())
    assert "PIPELINING" in [line.decode() for line in (raw.line(), *raw.multiline())][1:]
    assert raw.line() == b"+OK Send PASS"
    assert raw.line() == b"+OK Logged in, 2 messages"
    assert raw.line() == f"+OK 2 {sum(len(m) for _, m in messages)}".encode()
    for _, message in messages:
        assert raw.line() == f"+OK {len(message)} octets".encode()
        body = b"".join(line + b"\r\n" for line in raw.multiline())
        assert body == message.replace(b"\r\n.", b"\r\n..")  # on the wire, still stuffed
    assert raw.line() == b"+OK Message 1 deleted"
    assert raw.line() == b"+OK Logging out, 1 messages deleted"
    assert raw.at_eof()
    raw.close()
    assert stored() == messages[1:]


def test_failed_logins_look_alike_and_are_delayed(pop3, settings) -> None:
    settings.MAILSITE_AUTH_FAILURE_DELAY = 0.3
    replies = []
    for user, password in [(ADDRESS, "wrong"), ("nobody@example.com", PASSWORD)]:
        pop = client(pop3["pop3"].port)
        pop.user(user)
        started = time.monotonic()
        with pytest.raises(poplib.error_proto) as failure:
            pop.pass_(password)
        assert time.monotonic() - started >= 0.3
        replies.append(failure.value.args[0])
        pop.quit()
    assert replies == [b"-ERR [AUTH] Authentication failed"] * 2


def test_throttled_login_fails_even_with_the_right_password(pop3, settings) -> None:
    settings.MAILSITE_AUTH_MAX_FAILURES = 2
    pop = client(pop3["pop3"].port)
    for password in ["bad", "bad", PASSWORD]:
        pop.user(ADDRESS)
        with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[AUTH\] Authentication failed'$"):
            pop.pass_(password)
    pop.quit()


def test_long_command_line(pop3) -> None:
    raw = RawClient(pop3["pop3"].port)
    raw.send(b"USER " + b"x" * 300 + b"\r\nNOOP\r\nQUIT\r\n")
    assert raw.line() == b"-ERR Line too long"
    assert raw.line() == b"-ERR NOOP is not allowed in the authorization state"
    assert raw.line() == b"+OK Logging out"
    raw.close()


def test_idle_session_is_closed(pop3, settings) -> None:
    settings.MAILSITE_POP3_IDLE_TIMEOUT = 0.3
    deliver(text_mail("one"))
    pop = logged_in(pop3["pop3"].port)
    pop.dele(1)
    time.sleep(0.6)
    raw_reply = pop.file.readline()
    assert raw_reply == b"-ERR Autologout: idle for too long\r\n"
    assert pop.file.readline() == b""
    pop.close()
    pop = _login_when_unlocked(pop3["pop3"].port)
    assert pop.stat()[0] == 1  # the DELE of the timed-out session was not applied
    pop.quit()


def test_plain_text_login_refused_off_loopback(listeners, make_account, settings, tls_client_context) -> None:
    """A client that is not on loopback must use STLS first, unless MAILSITE_ALLOW_PLAINTEXT_AUTH is set."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    make_account(ADDRESS)
    settings.MAILSITE_BIND = "0.0.0.0"
    port = listeners("pop3d")["pop3"].port
    pop = poplib.POP3(address, port, timeout=20)
    assert "USER" not in pop.capa()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Plain-text authentication needs TLS"):
        pop.user(ADDRESS)
    # The certificate names localhost, not this address; the chain is still verified.
    tls_client_context.check_hostname = False
    pop.stls(tls_client_context)
    pop.user(ADDRESS)
    assert pop.pass_(PASSWORD).startswith(b"+OK")
    pop.quit()
    settings.MAILSITE_ALLOW_PLAINTEXT_AUTH = True
    pop = poplib.POP3(address, port, timeout=20)
    pop.user(ADDRESS)
    assert pop.pass_(PASSWORD).startswith(b"+OK")
    pop.quit()


def test_mail_sent_over_smtp_comes_back_unchanged(listeners, make_account) -> None:
    """SMTP delivers, POP3 hands out the same bytes, byte-stuffing undone by the client."""
    make_account(ADDRESS)
    started = listeners("smtpd", "pop3d")
    messages = [text_mail("over smtp"), eight_bit_mail(), multipart_mail()]
    with smtplib.SMTP("127.0.0.1", started["smtp"].port, timeout=20) as smtp:
        for raw in messages:
            smtp.sendmail("carol@remote.test", [ADDRESS], raw)
    pop = logged_in(started["pop3"].port)
    kept = stored()
    assert pop.stat() == (3, sum(len(raw) for _, raw in kept))
    for number, (_, raw) in enumerate(kept, 1):
        received = retrieved(pop, number)
        assert received == raw
        # What the sender sent is all there, after the trace headers the server added.
        assert received.endswith(messages[number - 1])
    pop.quit()
