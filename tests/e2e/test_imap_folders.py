"""Folder commands over a real imapd: names with "[", LSUB's "%" rule (RFC 3501 6.3.9), a hostile LIST
pattern, LIST-EXTENDED (RFC 5258), subscriptions of names with no folder, LIST-STATUS (RFC 5819), SPECIAL-USE
(RFC 6154), STATUS=SIZE (RFC 8438), and new keywords announced by FLAGS before FETCH shows them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.imap_support import RawClient, Server, deliver, message, start


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def untagged(data: bytes, kind: bytes) -> list[bytes]:
    return [line for line in data.split(b"\r\n") if line.startswith(b"* " + kind + b" ")]


def test_names_with_a_bracket(server: Server) -> None:
    client = RawClient(server)
    assert client.command("SELECT foo[bar").endswith(b" NO [NONEXISTENT] No such folder\r\n")
    assert client.command('SELECT "foo[bar"').endswith(b" NO [NONEXISTENT] No such folder\r\n")
    client.ok("CREATE foo[bar")
    assert b"[READ-WRITE]" in client.ok("SELECT foo[bar")
    assert untagged(client.ok('LIST "" foo['), b"LIST") == []
    assert untagged(client.ok('LIST "" foo[*'), b"LIST") == [b'* LIST (\\HasNoChildren) "/" "foo[bar"']
    client.ok("NOOP")


def test_lsub_percent_shows_an_unsubscribed_parent_as_noselect(server: Server) -> None:
    client = RawClient(server)
    client.ok("CREATE foo/bar")
    client.ok("UNSUBSCRIBE foo")
    assert untagged(client.ok('LSUB "" %'), b"LSUB")[-1] == b'* LSUB (\\Noselect \\HasChildren) "/" "foo"'
    assert untagged(client.ok('LSUB "" foo*'), b"LSUB") == [b'* LSUB (\\HasNoChildren) "/" "foo/bar"']
    assert untagged(client.ok('LSUB "foo/" %'), b"LSUB") == [b'* LSUB (\\HasNoChildren) "/" "foo/bar"']


def test_a_hostile_list_pattern_holds_up_no_other_session(server: Server) -> None:
    """The issue's 53-byte command took 288 s on a backtracking regex; 5,000 times longer it stopped the
    process. Here another session's NOOP is answered while each is in the server, the longest pattern allowed
    is answered, and the issue's one made 5,000 times longer is refused with BAD at once."""
    hostile = RawClient(server)
    other = RawClient(server)
    pattern = b"*%" * 8000 + b"x"  # just under the length limit
    tag = hostile.send(b'LIST "" {%d+}\r\n%s' % (len(pattern), pattern))
    assert other.ok("NOOP").endswith(b" OK NOOP completed\r\n")
    assert hostile.reply(tag) == tag.encode() + b" OK LIST completed\r\n"
    # The command made 5,000 times longer: refused at once.
    pattern = b"*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%x" * 5000
    tag = hostile.send(b'LIST "" {%d+}\r\n%s' % (len(pattern), pattern))
    assert other.ok("NOOP").endswith(b" OK NOOP completed\r\n")
    assert hostile.reply(tag).startswith(tag.encode() + b" BAD LIST pattern too long")
    # and the original command, answered at once
    assert hostile.ok('LIST "" "*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%x"').endswith(b" OK LIST completed\r\n")


def test_list_extended(server: Server) -> None:
    client = RawClient(server)
    client.ok("CREATE Fruit/Apple")
    client.ok("CREATE Fruit/Banana")
    client.ok("UNSUBSCRIBE Fruit")
    client.ok("UNSUBSCRIBE Fruit/Banana")
    # RFC 5258 5, example 2: SUBSCRIBED selects, and reports \Subscribed.
    lines = untagged(client.ok('LIST (SUBSCRIBED) "" "Fruit*"'), b"LIST")
    assert lines == [b'* LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Apple"']
    # RFC 5258 5, example 9: RECURSIVEMATCH reports a parent whose child is subscribed.
    lines = untagged(client.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "Fruit"'), b"LIST")
    assert lines == [b'* LIST (\\HasChildren) "/" "Fruit" ("CHILDINFO" ("SUBSCRIBED"))']
    # Several patterns, and RETURN (SUBSCRIBED CHILDREN).
    lines = untagged(client.ok('LIST "" ("Fruit" "Fruit/B%") RETURN (SUBSCRIBED CHILDREN)'), b"LIST")
    assert lines == [b'* LIST (\\HasChildren) "/" "Fruit"', b'* LIST (\\HasNoChildren) "/" "Fruit/Banana"']
    # RFC 6154 5.1: the SPECIAL-USE selection option.
    lines = untagged(client.ok('LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)'), b"LIST")
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"' in lines
    assert all(re.search(rb"\\(Sent|Drafts|Trash|Junk|Archive)\)", line) for line in lines)
    assert client.command('LIST (RECURSIVEMATCH) "" "*"').split(b" ")[1] == b"BAD"
    assert client.command('LIST (FANCY) "" "*"').split(b" ")[1] == b"BAD"


def test_subscriptions_of_names_that_are_no_folder(server: Server) -> None:
    """Subscriptions are names (RFC 5258 3.1, RFC 9051 6.3.7): a name with no folder is subscribed, a deleted folder
    stays subscribed, and LIST (SUBSCRIBED) says \\NonExistent for both, while another session, in IMAP4rev2,
    sees the same subscriptions."""
    client = RawClient(server)
    other = RawClient(server)
    assert b"* ENABLED IMAP4rev2\r\n" in other.ok("ENABLE IMAP4rev2")
    client.ok("CREATE Fruit/Banana")
    client.ok("CREATE Fruit/Peach")
    client.ok("UNSUBSCRIBE Fruit")
    assert client.ok("SUBSCRIBE Lists/Python").endswith(b" OK SUBSCRIBE completed\r\n")  # Dovecot accepts it too
    client.ok("DELETE Fruit/Peach")
    assert untagged(client.ok('LIST "" "Fruit*"'), b"LIST") == [
        b'* LIST (\\HasChildren) "/" "Fruit"',
        b'* LIST (\\HasNoChildren) "/" "Fruit/Banana"',
    ]
    assert b"Lists" not in client.ok('LIST "" "*"')
    wanted = [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Banana"',
        b'* LIST (\\HasNoChildren \\NonExistent \\Subscribed) "/" "Fruit/Peach"',
        b'* LIST (\\HasNoChildren \\NonExistent \\Subscribed) "/" "Lists/Python"',
    ]
    assert untagged(client.ok('LIST (SUBSCRIBED) "" "*/*"'), b"LIST") == wanted
    # IMAP4rev2 (RFC 9051 6.3.9): the same with RETURN (SUBSCRIBED); without the selection, folders only.
    assert untagged(other.ok('LIST (SUBSCRIBED) "" "*/*" RETURN (SUBSCRIBED)'), b"LIST") == wanted
    assert untagged(other.ok('LIST "" "*/*" RETURN (SUBSCRIBED)'), b"LIST") == wanted[:1]
    # RFC 9051 6.3.9's table: a name that is neither a folder nor subscribed, with a subscribed child.
    assert untagged(other.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "L%"'), b"LIST") == [
        b'* LIST (\\HasNoChildren \\NonExistent) "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))'
    ]
    # LIST-STATUS answers for folders only (RFC 5819: selectable ones).
    data = other.ok('LIST (SUBSCRIBED) "" "Fruit/*" RETURN (STATUS (MESSAGES))')
    assert untagged(data, b"STATUS") == [b'* STATUS "Fruit/Banana" (MESSAGES 0)']
    # LSUB (RFC 3501 6.3.9) lists the names; \Noselect only for the unsubscribed parents of the "%" rule.
    assert untagged(client.ok('LSUB "" "*/*"'), b"LSUB") == [
        b'* LSUB (\\HasNoChildren) "/" "Fruit/Banana"',
        b'* LSUB (\\HasNoChildren) "/" "Fruit/Peach"',
        b'* LSUB (\\HasNoChildren) "/" "Lists/Python"',
    ]
    assert untagged(client.ok('LSUB "" "L%"'), b"LSUB") == [b'* LSUB (\\Noselect \\HasNoChildren) "/" "Lists"']
    # The folder made again finds its subscription; UNSUBSCRIBE drops a name with no folder.
    client.ok("CREATE Fruit/Peach")
    assert b'* LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Peach"' in client.ok('LIST (SUBSCRIBED) "" Fruit/Peach')
    client.ok("UNSUBSCRIBE Lists/Python")
    assert untagged(client.ok('LSUB "" "L*"'), b"LSUB") == []
    # A name no folder could have is refused all the same.
    assert client.command('SUBSCRIBE "a*"').endswith(b" NO 'a*' is not a valid folder name\r\n")


def test_rename_moves_the_subscriptions_below_the_folder(server: Server) -> None:
    """As Dovecot does, RENAME takes along the subscriptions of the folder and of the names below it."""
    client = RawClient(server)
    client.ok("CREATE Work/Reports")
    client.ok("SUBSCRIBE Work/Old")  # no folder
    client.ok("UNSUBSCRIBE Work/Reports")
    client.ok("RENAME Work Job")
    assert untagged(client.ok('LIST (SUBSCRIBED) "" "*o*"'), b"LIST") == [
        b'* LIST (\\HasChildren \\Subscribed) "/" "Job"',
        b'* LIST (\\HasNoChildren \\NonExistent \\Subscribed) "/" "Job/Old"',
    ]
    assert untagged(client.ok('LIST "" "*o*" RETURN (SUBSCRIBED)'), b"LIST") == [
        b'* LIST (\\HasChildren \\Subscribed) "/" "Job"',
        b'* LIST (\\HasNoChildren) "/" "Job/Reports"',
    ]


def test_list_status_and_status_size(server: Server) -> None:
    deliver(message("one", "x" * 100 + "\r\n"))
    deliver(message("two"))
    client = RawClient(server)
    data = client.ok('LIST "" INBOX RETURN (STATUS (MESSAGES UNSEEN SIZE))')
    lines = [line for line in data.split(b"\r\n") if line.startswith(b"* ")]
    size = int(re.search(rb"SIZE (\d+)", lines[1])[1])
    assert lines == [
        b'* LIST (\\HasNoChildren) "/" "INBOX"',
        b'* STATUS "INBOX" (MESSAGES 2 UNSEEN 2 SIZE %d)' % size,
    ]
    status = untagged(client.ok("STATUS INBOX (SIZE DELETED MESSAGES)"), b"STATUS")
    assert status == [b'* STATUS "INBOX" (SIZE %d DELETED 0 MESSAGES 2)' % size]
    assert size > 200


def test_a_new_keyword_is_announced_before_fetch_shows_it(server: Server) -> None:
    deliver(message("one"))
    client = RawClient(server)
    client.ok("SELECT INBOX")
    data = client.ok("STORE 1 +FLAGS ($Important)")
    flags = data.index(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Important)\r\n")
    permanent = data.index(b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Important \\*)]")
    assert flags < permanent < data.index(b"* 1 FETCH (FLAGS ($Important \\Recent))")
    assert b"* FLAGS" not in client.ok("STORE 1 +FLAGS ($Important)")
    # Another session learns of it from its own FLAGS before the flag change is reported.
    other = RawClient(server)
    other.ok("SELECT INBOX")
    client.ok("STORE 1 +FLAGS ($Later)")
    data = other.ok("NOOP")
    assert data.index(b"* FLAGS (") < data.index(b"* 1 FETCH (UID 1 FLAGS ($Important $Later))")  # not recent here


def test_move_to_the_same_folder(server: Server) -> None:
    deliver(message("one"))
    deliver(message("two"))
    client = RawClient(server)
    client.ok("SELECT INBOX")
    data = client.ok("UID MOVE 1 INBOX")
    # RFC 6851 4.3: COPYUID first, then the message leaves under its old UID and comes back under a new one.
    assert re.search(rb"\* OK \[COPYUID \d+ 1 3\] ", data), data
    assert b"* 1 EXPUNGE\r\n" in data
    assert b"* 2 EXISTS\r\n" in data
    assert b"* SEARCH 2 3\r\n" in client.ok("UID SEARCH ALL")
    assert b"Subject: one" in client.ok("UID FETCH 3 (BODY.PEEK[HEADER.FIELDS (Subject)])")


def test_create_with_a_special_use(server: Server) -> None:
    client = RawClient(server)
    client.ok("DELETE Archive")
    assert b"CREATE-SPECIAL-USE" in client.ok("CAPABILITY")
    # RFC 6154 5.2, example: CREATE MyArchive (USE (\Archive)).
    client.ok("CREATE MyArchive (USE (\\Archive))")
    assert untagged(client.ok('LIST "" MyArchive'), b"LIST") == [b'* LIST (\\HasNoChildren \\Archive) "/" "MyArchive"']
    # A use another folder has already: NO [USEATTR] (RFC 6154 6), and nothing is created.
    assert b" NO [USEATTR] " in client.command("CREATE Other (USE (\\Sent))")
    assert untagged(client.ok('LIST "" Other'), b"LIST") == []
    assert b" NO [USEATTR] " in client.command("CREATE Other (USE (\\All))")
    assert b" BAD " in client.command("CREATE Other (FANCY (\\Sent))")
