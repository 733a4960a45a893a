"""Sign-in from an event loop: the database steps on the database threads, Argon2 on threads of its own.

Argon2 takes a fixed while of CPU by design (about 150 ms at production cost). Run on a listener's database
threads, a burst of logins would hold every thread, and every delivery and FETCH of the process would queue
behind it. Here the hash is checked in a separate small pool (argon2-cffi releases the GIL while it works), so
database steps keep their threads; `MAILSITE_PASSWORD_THREADS` bounds how many checks run at once per process.
What needs no Argon2 (a secret the cache knows, an app password's digest) is answered on the database thread
that read the account, which records the sign-in in the same trip. A secret the cache knows is checked again
in this pool once, after its answer, in the last quarter of the entry's lifetime, so that an account in steady
use never finds its entry run out.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from mailboxes import asyncdb
from mailboxes.actions import auth

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_renewals: set[asyncio.Future[auth.Verified]] = set()  # checks renewing the cache, held until they are done


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=settings.MAILSITE_PASSWORD_THREADS, thread_name_prefix="mail-auth"
            )
        return _executor


async def authenticate(address: str, password: str, *, remote_ip: str | None, protocol: str) -> auth.AuthResult:
    """`actions.authenticate` for listeners: read, check the secret off the database threads, record. A secret
    that needs no Argon2 (a repeated sign-in) is settled in one trip to a database thread."""
    settled = await asyncdb.call(auth.settle_at_once, address, password, remote_ip=remote_ip, protocol=protocol)
    loop = asyncio.get_running_loop()
    if settled.result is not None:
        if settled.renew:  # the cache's entry is checked again after this answer, and renewed if it still holds
            renewal = loop.run_in_executor(_pool(), auth.check_again, settled.found, password)
            _renewals.add(renewal)
            renewal.add_done_callback(_renewals.discard)
        return settled.result
    ok = await loop.run_in_executor(_pool(), auth.verify, settled.found, password)
    return await asyncdb.call(auth.record, settled.found, ok, remote_ip=remote_ip, protocol=protocol)
