"""Sieve scripts stored per account (validated on upload) and the decision taken at delivery."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from mailboxes.models import Mailbox
from mailboxes.tasks import purge_recycled
from mailcore.mime import parse_message
from relay.models import OutboundMessage
from sieve import delivery, scripts
from sieve.housekeeping import prune_vacation_log
from sieve.models import BeforeScript, SieveScript, VacationReply

pytestmark = pytest.mark.django_db

RAW = (
    b"Return-Path: <bob@remote.example>\r\n"
    b"From: Bob <bob@remote.example>\r\n"
    b"To: alice@example.com\r\n"
    b"Subject: Quarterly report\r\n"
    b"Message-ID: <q1@remote.example>\r\n"
    b"\r\n"
    b"Numbers inside.\r\n"
)
NOW = datetime.datetime(2026, 12, 3, 8, 0, tzinfo=datetime.UTC)


def decide(account, raw: bytes = RAW, sender: str = "bob@remote.example", **options) -> delivery.Decision:
    return delivery.decide(account.pk, raw, parse_message(raw), sender, account.address, now=NOW, **options)


def test_put_list_get_activate_rename_delete(make_account):
    alice = make_account("alice@example.com")
    scripts.put_script(alice, "main", 'require "fileinto"; fileinto "Work";')
    scripts.put_script(alice, "other", "keep;", activate=True)
    assert scripts.list_scripts(alice) == [("main", False), ("other", True)]
    scripts.set_active(alice, "main")
    assert scripts.list_scripts(alice) == [("main", True), ("other", False)]
    assert scripts.get_script(alice, "main") == 'require "fileinto"; fileinto "Work";'
    with pytest.raises(scripts.ScriptError) as info:
        scripts.delete_script(alice, "main")
    assert info.value.code == "ACTIVE"
    with pytest.raises(scripts.ScriptError) as info:
        scripts.rename_script(alice, "other", "main")
    assert info.value.code == "ALREADYEXISTS"
    scripts.rename_script(alice, "other", "spare")
    scripts.delete_script(alice, "spare")
    scripts.set_active(alice, "")
    assert scripts.list_scripts(alice) == [("main", False)]
    with pytest.raises(scripts.ScriptError) as info:
        scripts.get_script(alice, "spare")
    assert info.value.code == "NONEXISTENT"


def test_invalid_script_is_refused_with_position_and_nothing_is_stored(make_account):
    alice = make_account("alice@example.com")
    with pytest.raises(scripts.ScriptError, match=r"line 2, column 1: fileinto needs require"):
        scripts.put_script(alice, "bad", 'keep;\nfileinto "x";')
    assert not SieveScript.objects.exists()


def test_quota_on_size_and_count(make_account):
    alice = make_account("alice@example.com")
    with pytest.raises(scripts.ScriptError) as info:
        scripts.have_space(alice, "big", 1024 * 1024)
    assert info.value.code == "QUOTA/MAXSIZE"
    for i in range(scripts.MAX_SCRIPTS):
        SieveScript.objects.create(account=alice, name=f"s{i}", content="keep;")
    with pytest.raises(scripts.ScriptError) as info:
        scripts.put_script(alice, "one-more", "keep;")
    assert info.value.code == "QUOTA/MAXSCRIPTS"
    scripts.put_script(alice, "s0", "discard;")  # replacing one is always possible


def test_script_names(make_account):
    alice = make_account("alice@example.com")
    for bad in ("", "a\nb", "x" * 256, "tab\there"):
        with pytest.raises(scripts.ScriptError):
            scripts.put_script(alice, bad, "keep;")
    scripts.put_script(alice, "Ferien ab März", "keep;")


def test_no_script_is_plain_delivery(make_account):
    alice = make_account("alice@example.com")
    assert delivery.filtered_accounts({alice.pk}) == set()
    assert decide(alice).plain


def test_fileinto_with_create_and_flags(make_account):
    alice = make_account("alice@example.com")
    scripts.put_script(
        alice,
        "rules",
        'require ["fileinto", "mailbox", "imap4flags"];\n'
        'if header :contains "subject" "report" { fileinto :create :flags "\\\\Seen $Work" "Reports/2026"; }',
        activate=True,
    )
    assert delivery.filtered_accounts({alice.pk}) == {alice.pk}
    decision = decide(alice)
    folder = Mailbox.objects.get(account=alice, name="Reports/2026")
    assert Mailbox.objects.filter(account=alice, name="Reports").exists()
    assert decision.inbox is False
    assert decision.folders == [(folder.pk, ("\\Seen", "$Work"))]
    assert decision.outbound == []


def test_fileinto_missing_folder_without_create_keeps(make_account, caplog):
    alice = make_account("alice@example.com")
    scripts.put_script(alice, "rules", 'require "fileinto"; fileinto "Nowhere";', activate=True)
    decision = decide(alice)
    assert decision.plain
    assert "no folder 'Nowhere'" in caplog.text


def test_runtime_error_keeps_and_logs(make_account, caplog):
    alice = make_account("alice@example.com")
    redirects = "".join(f'redirect "r{i}@remote.example";' for i in range(10))
    scripts.put_script(alice, "rules", redirects, activate=True)
    assert decide(alice).plain
    assert "more than 4 redirects" in caplog.text


def test_redirect_goes_out_with_original_sender_and_a_hop_header(make_account):
    alice = make_account("alice@example.com")
    scripts.put_script(alice, "rules", 'redirect "alice@elsewhere.example";', activate=True)
    decision = decide(alice)
    assert decision.inbox is False
    [outgoing] = decision.outbound
    assert outgoing.sender == "bob@remote.example"
    assert outgoing.recipients == ("alice@elsewhere.example",)
    assert outgoing.raw.startswith(b"X-Sieve-Redirected-By: alice@example.com\r\nFrom: Bob")
    assert outgoing.author_domain is None


def test_redirect_loop_is_stopped_and_kept(make_account, caplog):
    alice = make_account("alice@example.com")
    scripts.put_script(alice, "rules", 'redirect "bob@example.com";', activate=True)
    looped = b"X-Sieve-Redirected-By: bob@example.com\r\nX-Sieve-Redirected-By: alice@example.com\r\n" + RAW
    decision = decide(alice, looped)
    assert decision.inbox is True
    assert decision.outbound == []
    assert "redirect loop" in caplog.text


VACATION = 'require "vacation"; vacation :days 3 :subject "Away" "Back on Monday.";'


def test_vacation_once_per_sender_per_period(make_account):
    alice = make_account("alice@example.com")
    scripts.put_script(alice, "away", VACATION, activate=True)
    first = decide(alice)
    assert first.inbox is True
    [reply] = first.outbound
    assert reply.sender == ""
    assert reply.recipients == ("bob@remote.example",)
    assert reply.author_domain == "example.com"
    assert b"Auto-Submitted: auto-replied" in reply.raw
    assert b"In-Reply-To: <q1@remote.example>" in reply.raw
    assert b"Subject: Away" in reply.raw
    assert decide(alice).outbound == []
    later = delivery.decide(
        alice.pk, RAW, parse_message(RAW), "bob@remote.example", alice.address, now=NOW + datetime.timedelta(days=3)
    )
    assert len(later.outbound) == 1
    assert VacationReply.objects.count() == 1


@pytest.mark.parametrize(
    ("sender", "extra"),
    [
        ("", b""),
        ("bob@remote.example", b"Auto-Submitted: auto-replied\r\n"),
        ("bob@remote.example", b"List-Id: <devs.remote.example>\r\n"),
        ("bob@remote.example", b"Precedence: bulk\r\n"),
        ("owner-devs@remote.example", b""),
        ("devs-request@remote.example", b""),
        ("MAILER-DAEMON@remote.example", b""),
        ("alice@example.com", b""),
    ],
)
def test_vacation_never_answers_lists_bulk_or_null(make_account, sender: str, extra: bytes):
    alice = make_account("alice@example.com")
    scripts.put_script(alice, "away", VACATION, activate=True)
    decision = decide(alice, extra + RAW, sender)
    assert decision.inbox is True
    assert decision.outbound == []


def test_vacation_not_for_mail_that_does_not_name_the_user(make_account):
    alice = make_account("alice@example.com")
    scripts.put_script(alice, "away", VACATION, activate=True)
    assert decide(alice, RAW.replace(b"To: alice@example.com", b"To: list@remote.example")).outbound == []
    with_addresses = VACATION.replace(":days 3", ':days 3 :addresses "list@remote.example"')
    scripts.put_script(alice, "away", with_addresses)
    assert len(decide(alice, RAW.replace(b"To: alice@example.com", b"To: list@remote.example")).outbound) == 1


def test_reject_sends_a_notice_and_stores_nothing(make_account):
    alice = make_account("alice@example.com")
    scripts.put_script(alice, "rules", 'require "reject"; reject "Not interested.";', activate=True)
    decision = decide(alice)
    assert decision.inbox is False
    [notice] = decision.outbound
    assert notice.sender == ""
    assert b"Not interested." in notice.raw
    assert decide(alice, sender="").outbound == []


def test_before_script_runs_first_and_can_decide(make_account):
    alice = make_account("alice@example.com")
    BeforeScript.objects.create(
        name="junk",
        content='require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];'
        'if spamtest :value "ge" :comparator "i;ascii-numeric" "6" { fileinto "Junk"; stop; }',
    )
    scripts.put_script(alice, "rules", 'require "fileinto"; fileinto "Archive";', activate=True)
    junk = Mailbox.objects.get(account=alice, name="Junk")
    archive = Mailbox.objects.get(account=alice, name="Archive")
    assert delivery.filtered_accounts({alice.pk}) == {alice.pk}
    assert decide(alice, spam_percent=90).folders == [(junk.pk, ())]
    assert decide(alice, spam_percent=10).folders == [(archive.pk, ())]


def test_send_queues_through_the_relay(make_account, django_capture_on_commit_callbacks):
    alice = make_account("alice@example.com")
    scripts.put_script(alice, "rules", 'require "copy"; redirect :copy "alice@elsewhere.example";', activate=True)
    decision = decide(alice)
    assert decision.inbox is True
    with django_capture_on_commit_callbacks():
        delivery.send(decision)
    message = OutboundMessage.objects.get()
    assert message.sender == "bob@remote.example"
    assert list(message.recipients.values_list("address", flat=True)) == ["alice@elsewhere.example"]


@pytest.mark.parametrize(
    ("status", "percent"),
    [
        (b"X-Spam-Status: Yes, score=12.00 required=6.00 engine=rspamd\r\n", 100),
        (b"X-Spam-Status: No, score=3.00 required=6.00 engine=rspamd\r\n", 25),
        (b"X-Spam-Status: No, score=-2.10 required=6.00 engine=rspamd\r\n", 0),
        (b"", None),
    ],
)
def test_junk_verdict_of_the_mx_is_spamtest(make_account, status: bytes, percent: int | None):
    from sieve.message import MessageView

    raw = status + RAW
    assert delivery.verdict_percent(MessageView(raw, parse_message(raw))) == percent
    alice = make_account("alice@example.com")
    scripts.put_script(
        alice,
        "junk",
        'require ["spamtestplus", "fileinto", "relational", "comparator-i;ascii-numeric"];'
        'if spamtest :percent :value "ge" :comparator "i;ascii-numeric" "50" { fileinto "Junk"; }',
        activate=True,
    )
    junk = Mailbox.objects.get(account=alice, name="Junk")
    assert decide(alice, raw).folders == ([(junk.pk, ())] if percent == 100 else [])


def answered_at(account, sender: str, now: datetime.datetime) -> bool:
    raw = RAW.replace(b"bob@remote.example", sender.encode())
    return bool(delivery.decide(account.pk, raw, parse_message(raw), sender, account.address, now=now).outbound)


def test_hourly_housekeeping_prunes_the_vacation_log_of_ended_periods(make_account):
    alice = make_account("alice@example.com")
    scripts.put_script(alice, "away", VACATION, activate=True)
    for sender, age in [("old1@remote.example", 4), ("old2@remote.example", 3), ("new@remote.example", 2)]:
        assert answered_at(alice, sender, timezone.now() - datetime.timedelta(days=age))
    assert prune_vacation_log(batch=1) == 1  # a batch at a time
    purge_recycled()  # the hourly task prunes the rest of the ended periods (:days 3)
    assert list(VacationReply.objects.values_list("sender", flat=True)) == ["new@remote.example"]
    # The pruned sender is answered again; the one whose period runs on is still not.
    assert answered_at(alice, "old1@remote.example", timezone.now())
    assert not answered_at(alice, "new@remote.example", timezone.now())
