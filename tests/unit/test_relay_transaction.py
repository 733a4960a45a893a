"""The relay's client transaction (relay/transaction.py), byte by byte: what it writes and when, what each reply
does to each recipient, with and without PIPELINING (RFC 2920) and CHUNKING (RFC 3030)."""

import pytest

from relay.transaction import Done, Failed, Features, Transaction, bdat_chunks, dot_stuffed

PIPELINING = Features(pipelining=True)
CHUNKING = Features(pipelining=True, chunking=True)
RAW = b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n"


def run(transaction: Transaction, replies: list[tuple[int, str]]) -> list[bytes]:
    """Feed `replies` in order; the writes the transaction made, one item per write."""
    writes = []
    replies = list(replies)
    while transaction.result is None:
        data = transaction.to_send()
        if data:
            writes.append(data)
        transaction.receive(*replies.pop(0))
    assert not replies, "replies left over"
    return writes


def test_pipelined_envelope_and_data_go_in_one_write() -> None:
    transaction = Transaction("a@x.example", ["b@y.example", "c@y.example"], RAW, PIPELINING)
    writes = run(transaction, [(250, "ok"), (250, "ok"), (250, "ok"), (354, "go"), (250, "queued")])
    assert writes == [
        b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n",
        b"Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n",
    ]
    assert transaction.result == Done({"b@y.example": (250, "queued"), "c@y.example": (250, "queued")})
    assert transaction.outstanding == 0


def test_without_pipelining_each_command_waits_for_its_reply() -> None:
    transaction = Transaction("a@x.example", ["b@y.example", "c@y.example"], RAW, Features(size=True))
    writes = run(transaction, [(250, "ok"), (250, "ok"), (250, "ok"), (354, "go"), (250, "queued")])
    assert writes == [
        b"MAIL FROM:<a@x.example> SIZE=35\r\n",
        b"RCPT TO:<b@y.example>\r\n",
        b"RCPT TO:<c@y.example>\r\n",
        b"DATA\r\n",
        dot_stuffed(RAW),
    ]


def test_reused_session_pipelines_rset_with_the_transaction() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], RAW, PIPELINING, reset=True)
    writes = run(transaction, [(250, "reset"), (250, "ok"), (250, "ok"), (354, "go"), (250, "queued")])
    assert writes[0] == b"RSET\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"


def test_rset_refused_is_a_failure_without_a_reply_code() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], RAW, PIPELINING, reset=True)
    transaction.to_send()
    transaction.receive(421, "4.4.2 idle too long")
    assert transaction.result == Failed(None, "RSET answered 421 4.4.2 idle too long")
    assert transaction.outstanding == 3  # MAIL, RCPT and DATA unanswered: the caller closes the session


def test_partial_rcpt_failures_keep_their_own_replies() -> None:
    transaction = Transaction("a@x.example", ["b@y.example", "c@y.example", "d@y.example"], RAW, PIPELINING)
    run(
        transaction,
        [(250, "ok"), (550, "5.1.1 no such user"), (250, "ok"), (452, "4.2.2 full"), (354, "go"), (250, "queued")],
    )
    assert transaction.result == Done(
        {
            "b@y.example": (550, "5.1.1 no such user"),
            "c@y.example": (250, "queued"),
            "d@y.example": (452, "4.2.2 full"),
        }
    )


def test_every_rcpt_refused_the_pipelined_data_is_refused_too() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], RAW, PIPELINING)
    writes = run(transaction, [(250, "ok"), (550, "5.1.1 no"), (503, "5.5.1 no valid recipients")])
    assert len(writes) == 1
    assert transaction.result == Done({"b@y.example": (550, "5.1.1 no")})
    assert transaction.outstanding == 0


def test_354_after_every_rcpt_refused_is_answered_with_an_empty_message() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], RAW, PIPELINING)
    writes = run(transaction, [(250, "ok"), (550, "5.1.1 no"), (354, "go"), (554, "5.5.1 no recipients")])
    assert writes[1] == b".\r\n"
    assert transaction.result == Done({"b@y.example": (550, "5.1.1 no")})


def test_every_rcpt_refused_without_pipelining_sends_no_data() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], RAW, Features())
    writes = run(transaction, [(250, "ok"), (550, "5.1.1 no")])
    assert writes == [b"MAIL FROM:<a@x.example>\r\n", b"RCPT TO:<b@y.example>\r\n"]


@pytest.mark.parametrize("code", [550, 451])
def test_mail_refused_fails_the_transaction_with_its_reply(code: int) -> None:
    transaction = Transaction("a@x.example", ["b@y.example", "c@y.example"], RAW, PIPELINING)
    transaction.to_send()
    transaction.receive(code, "sender refused")
    assert transaction.result == Failed(code, "sender refused")
    assert transaction.to_send() == b""
    with pytest.raises(RuntimeError):
        transaction.receive(503, "late")


def test_data_refused_permanently_bounces_the_accepted_recipients_only() -> None:
    transaction = Transaction("a@x.example", ["b@y.example", "c@y.example"], RAW, PIPELINING)
    run(transaction, [(250, "ok"), (250, "ok"), (550, "5.1.1 no"), (554, "5.7.1 policy")])
    assert transaction.result == Done({"b@y.example": (554, "5.7.1 policy"), "c@y.example": (550, "5.1.1 no")})


@pytest.mark.parametrize("reply", [(451, "4.3.0 try later"), (250, "no 354")])
def test_data_not_started_otherwise_fails_the_transaction(reply: tuple[int, str]) -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], RAW, PIPELINING)
    run(transaction, [(250, "ok"), (250, "ok"), reply])
    assert transaction.result == Failed(*reply)


def test_message_deferred_fails_the_transaction() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], RAW, PIPELINING)
    run(transaction, [(250, "ok"), (250, "ok"), (354, "go"), (452, "4.3.1 out of space")])
    assert transaction.result == Failed(452, "4.3.1 out of space")


def test_chunking_sends_bdat_last_after_the_envelope_replies() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], RAW, CHUNKING)
    writes = run(transaction, [(250, "ok"), (250, "ok"), (250, "2.0.0 queued")])
    assert writes == [
        b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n",
        b"BDAT 35 LAST\r\n" + RAW,  # no dot-stuffing and no final dot
    ]
    assert transaction.result == Done({"b@y.example": (250, "2.0.0 queued")})


def test_pipelined_chunks_go_in_one_write_and_each_is_answered() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], b"0123456789", CHUNKING, chunk_size=4)
    writes = run(transaction, [(250, "ok"), (250, "ok"), (250, "4"), (250, "8"), (250, "done")])
    assert writes[1] == b"BDAT 4\r\n0123BDAT 4\r\n4567BDAT 2 LAST\r\n89"
    assert transaction.result == Done({"b@y.example": (250, "done")})


def test_chunks_without_pipelining_wait_for_each_reply() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], b"0123456789", Features(chunking=True), chunk_size=5)
    writes = run(transaction, [(250, "ok"), (250, "ok"), (250, "5"), (250, "done")])
    assert writes[2:] == [b"BDAT 5\r\n01234", b"BDAT 5 LAST\r\n56789"]


def test_a_refused_chunk_ends_the_transaction_out_of_step() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], b"0123456789", CHUNKING, chunk_size=4)
    run(transaction, [(250, "ok"), (250, "ok"), (552, "5.3.4 too big")])
    assert transaction.result == Done({"b@y.example": (552, "5.3.4 too big")})
    assert transaction.outstanding == 2  # the later chunks' replies are never read: the session is closed


def test_chunking_with_every_rcpt_refused_sends_no_bdat() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], RAW, CHUNKING)
    writes = run(transaction, [(250, "ok"), (550, "no")])
    assert len(writes) == 1


def test_size_and_8bitmime_options() -> None:
    transaction = Transaction("a@x.example", ["b@y.example"], "é\r\n".encode(), Features(size=True, eight_bit=True))
    assert transaction.to_send() == b"MAIL FROM:<a@x.example> SIZE=4 BODY=8BITMIME\r\n"


def test_non_ascii_addresses_need_smtputf8() -> None:
    refused = Transaction("ä@x.example", ["b@y.example"], RAW, PIPELINING)
    assert refused.result == Failed(553, "5.6.7 the server does not support SMTPUTF8 for non-ASCII addresses")
    assert refused.to_send() == b""
    taken = Transaction("ä@x.example", ["b@y.example"], RAW, Features(smtputf8=True))
    assert taken.to_send() == "MAIL FROM:<ä@x.example> SMTPUTF8\r\n".encode()


def test_dot_stuffing_and_final_crlf() -> None:
    assert dot_stuffed(b".a\r\nb\r\n..c") == b"..a\r\nb\r\n...c\r\n.\r\n"
    assert bdat_chunks(b"") == [b"BDAT 0 LAST\r\n"]


def test_callers_parameters_go_ahead_of_ours() -> None:
    transaction = Transaction(
        "a@x.example",
        ["b@y.example", "c@y.example"],
        RAW,
        Features(pipelining=True, size=True),
        mail_options=["RET=HDRS", "ENVID=q1"],
        rcpt_options=lambda rcpt: ["NOTIFY=FAILURE"] if rcpt.startswith("b") else [],
    )
    assert transaction.to_send() == (
        b"MAIL FROM:<a@x.example> RET=HDRS ENVID=q1 SIZE=35\r\n"
        b"RCPT TO:<b@y.example> NOTIFY=FAILURE\r\nRCPT TO:<c@y.example>\r\nDATA\r\n"
    )
