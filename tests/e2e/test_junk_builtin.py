"""The built-in per-account junk filter (no rspamd configured): training and verdicts at the MX."""

from __future__ import annotations

import imaplib
import smtplib

from django.urls import reverse

from mailauth import tally, tasks, training
from mailauth.models import JunkToken, JunkTraining, MxTally
from mailboxes.models import Account, Message, Role
from tests.conftest import PASSWORD
from tests.relay_support import RELAY_QUEUE, CeleryWorker, wait_for
from tests.smtp_support import mail, stored

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
SPAMMY = ["Cheap pills casino bonus click now", "Win money casino lottery prize now", "Cheap viagra pills bonus offer"]
HAMMY = ["Project meeting minutes attached", "Lunch on Friday with the team", "Quarterly report draft for review"]


def send(port: int, raw: bytes, rcpt: str = "alice@example.com") -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("mail.sender.test")
        client.mail("carol@sender.test")
        client.rcpt(rcpt)
        code, text = client.data(raw)
    return code, text.decode()


def newest_folder(address: str) -> str:
    return Message.objects.filter(account__address=address).latest("id").mailbox.role


def spam_fields(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n\t", " ")
    return [line for line in head.split("\r\n") if line.lower().startswith("x-spam")]


def test_gtube_is_refused_without_rspamd(listeners, make_account, settings):
    settings.MAILSITE_RSPAMD_URL = ""
    make_account("alice@example.com")
    port = listeners("smtpd")["smtp"].port
    assert send(port, mail(body=GTUBE + "\r\n")) == (550, "5.7.1 Message refused as spam")
    assert stored("alice@example.com") == []


def test_training_is_idempotent_and_relearns(make_account):
    account = make_account("alice@example.com")
    raw = mail("Cheap pills", body="cheap pills casino\r\n")
    assert training.train_builtin(account.pk, raw, spam=True)
    spam_counts = sorted(JunkToken.objects.values_list("token", "spam", "ham"))
    assert not training.train_builtin(account.pk, raw, spam=True)
    assert sorted(JunkToken.objects.values_list("token", "spam", "ham")) == spam_counts
    assert {(s, h) for _, s, h in spam_counts} == {(1, 0)}
    assert training.train_builtin(account.pk, raw, spam=False)
    assert {(s, h) for s, h in JunkToken.objects.values_list("spam", "ham")} == {(0, 1)}
    assert list(JunkTraining.objects.values_list("spam", flat=True)) == [False]


def test_trained_account_gets_a_verdict_others_do_not(listeners, make_account, settings):
    settings.MAILSITE_AUTH_CACHE_SECONDS = 0  # the training below must count for the very next message
    settings.MAILSITE_RSPAMD_URL = ""
    settings.MAILSITE_RSPAMD_CONTROLLER_URL = ""
    make_account("alice@example.com")
    make_account("bob@example.com")
    port = listeners("smtpd")["smtp"].port
    for number, subject in enumerate(SPAMMY + HAMMY):
        assert send(port, mail(f"t{number} {subject}", body=f"{subject}.\r\n"))[0] == 250
    ids = list(Message.objects.filter(account__address="alice@example.com").order_by("id").values_list("pk", flat=True))
    tasks.learn.apply(args=[ids[:3], True]).get()
    tasks.learn.apply(args=[ids[3:], False]).get()
    alice = Account.objects.get(address="alice@example.com")
    assert JunkTraining.objects.filter(account=alice).count() == 6

    assert send(port, mail("Cheap casino bonus", body="Click now: cheap pills, casino money prize.\r\n"))[0] == 250
    assert spam_fields(stored("alice@example.com")[-1])[0] == "X-Spam: Yes"
    assert newest_folder("alice@example.com") == Role.JUNK
    assert send(port, mail("Team meeting", body="Minutes of the project meeting, for review.\r\n"))[0] == 250
    assert spam_fields(stored("alice@example.com")[-1])[0] == "X-Spam: No"
    assert newest_folder("alice@example.com") == Role.INBOX
    # Bob trained nothing: his filter has no opinion, and says none.
    assert send(port, mail("Cheap casino bonus", body="Click now: cheap pills.\r\n"), "bob@example.com")[0] == 250
    assert spam_fields(stored("bob@example.com")[-1]) == []


def test_mx_counts_per_domain_for_the_admin(listeners, make_account, settings, monkeypatch, client):
    monkeypatch.setattr(tally, "FLUSH_INTERVAL", 0.05)
    settings.MAILSITE_RSPAMD_URL = ""
    make_account("alice@example.com")
    port = listeners("smtpd")["smtp"].port
    assert send(port, mail("fine"))[0] == 250
    assert send(port, mail("gtube", body=GTUBE + "\r\n"))[0] == 550
    wait_for(lambda: MxTally.objects.filter(domain="example.com", delivered=1, refused=1).exists())
    client.force_login(make_account("admin@example.com", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:mailauth_mxtally_changelist"))
    assert page.status_code == 200
    assert b"example.com" in page.content


def test_imap_copy_into_and_out_of_junk_trains_the_builtin_filter(listeners, make_account, settings, tmp_path):
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE  # where this process sends the training task, the worker listens
    settings.MAILSITE_RSPAMD_URL = ""
    worker = CeleryWorker(tmp_path / "worker", {"MAILSITE_RSPAMD_CONTROLLER_URL": ""})
    worker.start()
    try:
        alice = make_account("alice@example.com")
        ports = listeners("smtpd", "imapd")
        assert send(ports["smtp"].port, mail("Prize", body="Cheap casino bonus, click now.\r\n"))[0] == 250
        imap = imaplib.IMAP4("127.0.0.1", ports["imap"].port, timeout=10)
        try:
            imap.login("alice@example.com", PASSWORD)
            imap.select("INBOX")
            assert imap.uid("COPY", "1:*", "Junk")[0] == "OK"
            wait_for(lambda: JunkTraining.objects.filter(account=alice, spam=True).exists(), timeout=30)
            imap.select("Junk")
            assert imap.uid("COPY", "1:*", "Archive")[0] == "OK"
            wait_for(lambda: JunkTraining.objects.filter(account=alice, spam=False).exists(), timeout=30)
        finally:
            imap.logout()
        assert JunkTraining.objects.filter(account=alice).count() == 1  # one message, relearnt: not two
    finally:
        worker.stop()
