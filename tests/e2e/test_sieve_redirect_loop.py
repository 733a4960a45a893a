"""Two accounts that redirect to each other: the message goes round once (the first hop straight into the store,
the second through the real relay and MX), then stops at the loop check and is kept, exactly once."""

from __future__ import annotations

import smtplib

import pytest

from mailboxes.models import Message
from relay.models import OutboundRecipient, State
from sieve import scripts
from tests.dns_server import DnsServer
from tests.relay_support import RELAY_QUEUE, CeleryWorker, wait_for

pytestmark = pytest.mark.slow


def test_a_redirect_loop_between_two_accounts_ends_with_one_kept_copy(listeners, make_account, settings, tmp_path):
    alice = make_account("alice@example.com")
    bob = make_account("bob@example.com")
    scripts.put_script(alice, "fwd", 'redirect "bob@example.com";', activate=True)
    scripts.put_script(bob, "fwd", 'redirect "alice@example.com";', activate=True)
    port = listeners("smtpd")["smtp"].port
    # Our own MX, as the relay finds it for example.com: the loopback listener above.
    dns_server = DnsServer()
    dns_server.add("example.com", "MX", "10 mx.example.com.")
    dns_server.add("mx.example.com", "A", "127.0.0.1")
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE
    worker = CeleryWorker(
        tmp_path / "worker",
        {
            "MAILSITE_DNS_NAMESERVERS": dns_server.address,
            "MAILSITE_DNS_TIMEOUT": "1",
            "MAILSITE_RELAY_PORT": str(port),
            "MAILSITE_RELAY_TIMEOUT": "5",
            "MAILSITE_RELAY_RETRY_SCHEDULE": "1s",
            "MAILSITE_RELAY_SWEEP_INTERVAL": "1s",
            "MAILSITE_RELAY_SWEEP_GRACE": "1s",
        },
    )
    worker.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail(
                "carol@remote.example",
                ["alice@example.com"],
                b"From: carol@remote.example\r\nTo: alice@example.com\r\nSubject: Round and round\r\n\r\nHi\r\n",
            )
        # alice -> bob (straight into the store) -> alice (through the relay and the MX), who finds her own name
        # among the hops and keeps it.
        wait_for(lambda: OutboundRecipient.objects.filter(state=State.DELIVERED).count() == 1, timeout=30)
        hops = OutboundRecipient.objects.order_by("pk").values_list("address", flat=True)
        assert list(hops) == ["alice@example.com"]
        stored = list(Message.objects.filter(subject="Round and round"))
        assert [m.account_id for m in stored] == [alice.pk]
        assert not Message.objects.filter(account=bob).exists()
        raw = bytes(stored[0].body.raw)
        assert raw.count(b"X-Sieve-Redirected-By: ") == 2
    finally:
        worker.stop()
        dns_server.close()
