"""The ManageSieve core (RFC 5804), byte by byte: commands in, responses and events out."""

from __future__ import annotations

import base64

import pytest

from sieve.managesieve.protocol import (
    MAX_LITERAL,
    NEED_DATA,
    Authenticate,
    Close,
    ManageSieveConnection,
    Operation,
    StartTLS,
    State,
)

GREETING_PLAIN = (
    b'"IMPLEMENTATION" "Mailsite"\r\n'
    b'"SASL" ""\r\n'
    b'"SIEVE" "fileinto reject ereject envelope body relational subaddress imap4flags copy variables date vacation'
    b' mailbox spamtest spamtestplus comparator-i;ascii-numeric comparator-i;octet comparator-i;ascii-casemap"\r\n'
    b'"STARTTLS"\r\n'
    b'"MAXREDIRECTS" "4"\r\n'
    b'"UNAUTHENTICATE"\r\n'
    b'"VERSION" "1.0"\r\n'
    b"OK\r\n"
)
PLAIN = base64.b64encode(b"\0alice@example.com\0secret")


def connection(*, tls: bool = False, plaintext_allowed: bool = False) -> ManageSieveConnection:
    conn = ManageSieveConnection(tls=tls, plaintext_allowed=plaintext_allowed)
    conn.data_to_send()
    return conn


def feed(conn: ManageSieveConnection, data: bytes) -> tuple[list, bytes]:
    conn.receive_data(data)
    events = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            break
        events.append(event)
        break  # the core waits for this event's answer
    return events, conn.data_to_send()


def logged_in() -> ManageSieveConnection:
    conn = connection(tls=True)
    [event], _ = feed(conn, b'AUTHENTICATE "PLAIN" "' + PLAIN + b'"\r\n')
    assert event == Authenticate("alice@example.com", "secret")
    conn.login_succeeded()
    assert conn.data_to_send() == b'OK "Logged in"\r\n'
    return conn


def test_greeting_without_tls_offers_starttls_and_no_mechanism():
    conn = ManageSieveConnection(tls=False, plaintext_allowed=False)
    assert conn.data_to_send() == GREETING_PLAIN


def test_greeting_with_tls_offers_plain_and_not_starttls():
    conn = ManageSieveConnection(tls=True, plaintext_allowed=False)
    greeting = conn.data_to_send()
    assert b'"SASL" "PLAIN"\r\n' in greeting
    assert b"STARTTLS" not in greeting


def test_starttls_then_capabilities_again():
    conn = connection()
    events, out = feed(conn, b"STARTTLS\r\n")
    assert events == [StartTLS()]
    assert out == b'OK "Begin TLS negotiation now"\r\n'
    conn.tls_started()
    out = conn.data_to_send()
    assert out.startswith(b'"IMPLEMENTATION" "Mailsite"\r\n"SASL" "PLAIN"\r\n')
    assert b"STARTTLS" not in out
    assert out.endswith(b"OK\r\n")
    assert feed(conn, b"STARTTLS\r\n") == ([], b'NO "TLS is already active"\r\n')


def test_password_before_tls_is_refused():
    conn = connection()
    assert feed(conn, b'AUTHENTICATE "PLAIN" "' + PLAIN + b'"\r\n') == (
        [],
        b'NO (ENCRYPT-NEEDED) "use STARTTLS before sending a password"\r\n',
    )


def test_authenticate_with_continuation_as_literal():
    conn = connection(tls=True)
    assert feed(conn, b'authenticate "plain"\r\n') == ([], b'""\r\n')
    events, _out = feed(conn, b"{%d+}\r\n" % len(PLAIN) + PLAIN + b"\r\n")
    assert events == [Authenticate("alice@example.com", "secret")]
    conn.login_failed()
    assert conn.data_to_send() == b'NO "authentication failed"\r\n'


def test_authenticate_continuation_quoted_and_cancel():
    conn = connection(tls=True)
    feed(conn, b'AUTHENTICATE "PLAIN"\r\n')
    assert feed(conn, b'"*"\r\n') == ([], b'NO "authentication cancelled"\r\n')
    feed(conn, b'AUTHENTICATE "PLAIN"\r\n')
    events, _ = feed(conn, b'"' + PLAIN + b'"\r\n')
    assert events == [Authenticate("alice@example.com", "secret")]


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b'AUTHENTICATE "DIGEST-MD5"\r\n', b'NO "only the PLAIN mechanism is offered"\r\n'),
        (b'AUTHENTICATE "PLAIN" "not base64!"\r\n', b'NO "malformed PLAIN response"\r\n'),
        (
            b'AUTHENTICATE "PLAIN" "' + base64.b64encode(b"bob@example.com\0alice@example.com\0x") + b'"\r\n',
            b'NO (AUTH-TOO-WEAK) "acting for another user is not allowed"\r\n',
        ),
        (b"LISTSCRIPTS\r\n", b'NO "AUTHENTICATE first"\r\n'),
        (b"FROBNICATE\r\n", b'NO "unknown command FROBNICATE"\r\n'),
        (b'"quoted"\r\n', b'NO "a command name was expected"\r\n'),
        (b'PUTSCRIPT "a\r\n', b'NO "malformed quoted string"\r\n'),
        (b"\r\n", b'NO "empty command"\r\n'),
    ],
)
def test_refusals_before_login(line: bytes, reply: bytes):
    conn = connection(tls=True)
    assert feed(conn, line) == ([], reply)


def test_three_failed_logins_end_the_session():
    conn = connection(tls=True)
    for _ in range(2):
        feed(conn, b'AUTHENTICATE "PLAIN" "' + PLAIN + b'"\r\n')
        conn.login_failed()
    feed(conn, b'AUTHENTICATE "PLAIN" "' + PLAIN + b'"\r\n')
    conn.login_failed()
    assert conn.data_to_send().endswith(b'BYE "too many failed logins"\r\n')
    assert conn.next_event() == Close()


def test_operations_become_events():
    conn = logged_in()
    script = b'require "fileinto";\r\nfileinto "A";\r\n'
    events, _out = feed(
        conn,
        b"LISTSCRIPTS\r\n",
    )
    assert events == [Operation("LISTSCRIPTS", ())]
    conn.send_scripts([("vacation", True), ('odd "name"', False)])
    assert conn.data_to_send() == b'"vacation" ACTIVE\r\n"odd \\"name\\""\r\nOK\r\n'
    events, _ = feed(conn, b'PUTSCRIPT "rules" {%d+}\r\n' % len(script) + script + b"\r\n")
    assert events == [Operation("PUTSCRIPT", ("rules", script.decode()))]
    conn.respond(True)
    assert conn.data_to_send() == b"OK\r\n"
    events, _ = feed(conn, b'GETSCRIPT "rules"\r\n')
    conn.send_script(script.decode())
    assert conn.data_to_send() == b"{%d}\r\n" % len(script) + script + b"\r\nOK\r\n"
    events, _ = feed(conn, b'HAVESPACE "rules" 1000\r\n')
    assert events == [Operation("HAVESPACE", ("rules", 1000))]
    conn.respond(False, "too big", "QUOTA/MAXSIZE")
    assert conn.data_to_send() == b'NO (QUOTA/MAXSIZE) "too big"\r\n'
    events, _ = feed(conn, b'RENAMESCRIPT "a" "b"\r\n')
    assert events == [Operation("RENAMESCRIPT", ("a", "b"))]


def test_pipelined_commands_wait_for_the_answer():
    conn = logged_in()
    conn.receive_data(b'SETACTIVE "a"\r\nDELETESCRIPT "b"\r\nNOOP\r\n')
    assert conn.next_event() == Operation("SETACTIVE", ("a",))
    with pytest.raises(RuntimeError):
        conn.next_event()
    conn.respond(True)
    assert conn.next_event() == Operation("DELETESCRIPT", ("b",))
    conn.respond(False, "no such script", "NONEXISTENT")
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send() == b'OK\r\nNO (NONEXISTENT) "no such script"\r\nOK "Done"\r\n'


def test_checkscript_is_answered_by_the_core_with_line_and_column():
    conn = logged_in()
    assert feed(conn, b'CHECKSCRIPT "keep;"\r\n') == ([], b"OK\r\n")
    bad = b'keep;\r\nfileinto "x";\r\n'
    reply = b'NO "line 2, column 1: fileinto needs require \\"fileinto\\""\r\n'
    assert feed(conn, b"CHECKSCRIPT {%d+}\r\n" % len(bad) + bad + b"\r\n") == ([], reply)


def test_wrong_arguments():
    conn = logged_in()
    assert feed(conn, b'HAVESPACE "a" "b"\r\n') == ([], b'NO "HAVESPACE takes 2 argument(s)"\r\n')
    assert feed(conn, b'PUTSCRIPT "a"\r\n') == ([], b'NO "PUTSCRIPT takes 2 argument(s)"\r\n')
    assert feed(conn, b'GETSCRIPT "\xff"\r\n') == ([], b'NO "GETSCRIPT takes 1 argument(s)"\r\n')
    assert feed(conn, b'AUTHENTICATE "PLAIN"\r\n') == ([], b'NO "already authenticated"\r\n')


def test_noop_with_tag_and_logout():
    conn = logged_in()
    assert feed(conn, b'NOOP "STARTTLS-SYNC-42"\r\n') == ([], b'OK (TAG "STARTTLS-SYNC-42") "Done"\r\n')
    events, out = feed(conn, b"LOGOUT\r\n")
    assert events == [Close()]
    assert out == b'OK "Logout"\r\n'
    assert conn.state is State.CLOSED


def test_input_in_one_byte_chunks_gives_the_same_events():
    script = b"vacation text:\r\nAway.\r\n.\r\n;"
    data = b'putscript "v" {%d}\r\n' % len(script) + script + b"\r\nLISTSCRIPTS\r\n"
    conn = logged_in()
    events = []
    for i in range(len(data)):
        found, _ = feed(conn, data[i : i + 1])
        for event in found:
            events.append(event)
            conn.respond(True)
    assert events == [Operation("PUTSCRIPT", ("v", script.decode())), Operation("LISTSCRIPTS", ())]


def test_oversized_literal_is_refused_and_skipped():
    conn = logged_in()
    head = b'PUTSCRIPT "big" {%d+}\r\n' % (MAX_LITERAL + 1)
    events, out = feed(conn, head + b"x" * 1000)
    assert events == []
    assert out == b'NO (QUOTA/MAXSIZE) "a string is limited to %d octets"\r\n' % MAX_LITERAL
    # The rest of the literal arrives and is dropped; the next command is read normally.
    events, out = feed(conn, b"x" * (MAX_LITERAL + 1 - 1000) + b"\r\nNOOP\r\n")
    assert (events, out) == ([], b'OK "Done"\r\n')


def test_overlong_line_is_refused_and_skipped():
    conn = logged_in()
    events, out = feed(conn, b'NOOP "' + b"a" * 9000)
    assert (events, out) == ([], b'NO "malformed quoted string"\r\n')
    events, out = feed(conn, b'aaaa"\r\nNOOP\r\n')
    assert (events, out) == ([], b'OK "Done"\r\n')


def test_commands_pipelined_with_starttls_end_the_session():
    # The STARTTLS injection flaw: a command sent in plain text after STARTTLS must not run under TLS.
    conn = connection()
    events, out = feed(conn, b"STARTTLS\r\nLISTSCRIPTS\r\n")
    assert events == [Close()]
    assert out == b'BYE "commands pipelined after STARTTLS"\r\n'


def test_unauthenticate_returns_to_the_first_state():
    conn = logged_in()
    assert feed(conn, b"UNAUTHENTICATE\r\n") == ([], b"OK\r\n")
    assert feed(conn, b"LISTSCRIPTS\r\n") == ([], b'NO "AUTHENTICATE first"\r\n')
    events, _ = feed(conn, b'AUTHENTICATE "PLAIN" "' + PLAIN + b'"\r\n')
    assert events == [Authenticate("alice@example.com", "secret")]
    assert feed(connection(tls=True), b"UNAUTHENTICATE\r\n") == ([], b'NO "not authenticated"\r\n')


def test_each_known_command_is_told_to_the_shell():
    told: list[str] = []
    conn = ManageSieveConnection(tls=True, plaintext_allowed=False, on_command=told.append)
    conn.receive_data(b'capability\r\nNOOP "x"\r\nXYZZY\r\nLISTSCRIPTS\r\n')
    assert conn.next_event() is NEED_DATA
    assert told == ["CAPABILITY", "NOOP", "LISTSCRIPTS"]
