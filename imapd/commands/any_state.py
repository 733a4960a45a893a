"""CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342), IDLE (RFC 2177),
COMPRESS (RFC 4978)."""

from __future__ import annotations

import asyncio
import contextlib

from imapd.commands.args import count
from imapd.protocol import Atom, Command, ParseError, State
from imapd.session import No, Session


async def capability(session: Session, command: Command) -> str:
    count(command, 0)
    session.send(f"* CAPABILITY {session.capabilities()}\r\n".encode())
    return "CAPABILITY completed"


async def noop(session: Session, command: Command) -> str:
    count(command, 0)
    return "NOOP completed"  # the session reports folder changes before this reply


async def logout(session: Session, command: Command) -> str:
    count(command, 0)
    session.send(b"* BYE Mailsite IMAP4rev1 server logging out\r\n")
    session.conn.state = State.LOGOUT
    return "LOGOUT completed"


async def id_(session: Session, command: Command) -> str:
    args = count(command, 1)
    if not (isinstance(args[0], list) or str(args[0]).upper() == "NIL"):
        raise ParseError("ID needs a parameter list or NIL")
    session.send(b'* ID ("name" "Mailsite" "vendor" "Mailsite")\r\n')
    return "ID completed"


async def enable(session: Session, command: Command) -> str:
    if not command.args:
        raise ParseError("ENABLE needs at least one capability")
    enabled = []
    for token in command.args:
        name = str(token).upper() if isinstance(token, Atom) else ""
        # RFC 7162 3.2.3: QRESYNC implies CONDSTORE. Unknown capabilities are ignored (RFC 5161 3.1).
        if name == "CONDSTORE" and not session.condstore:
            session.enable_condstore()
            enabled.append(name)
        elif name == "QRESYNC" and not session.qresync:
            session.enable_condstore()
            session.qresync = True
            enabled.append(name)
        elif name == "UTF8=ACCEPT" and not session.utf8_accept:
            session.utf8_accept = True
            enabled.append(name)
        elif name == "IMAP4REV2" and not session.rev2:
            # RFC 9051 6.3.1: a server offering both versions speaks IMAP4rev1 until this.
            session.rev2 = True
            enabled.append("IMAP4rev2")
    session.send(("* ENABLED" + "".join(" " + e for e in enabled) + "\r\n").encode())
    return "ENABLE completed"


async def compress(session: Session, command: Command) -> None:
    """RFC 4978: COMPRESS DEFLATE; the tagged OK is the last thing sent uncompressed."""
    (mechanism,) = count(command, 1)
    if str(mechanism).upper() != "DEFLATE":
        raise ParseError("The only compression mechanism is DEFLATE")
    if session.compressed:
        raise No("[COMPRESSIONACTIVE] Compression is already on")
    session.send(f"{command.tag} OK DEFLATE active\r\n".encode())
    await session.flush()
    session.start_compression()


async def namespace(session: Session, command: Command) -> str:
    count(command, 0)
    session.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
    return "NAMESPACE completed"


async def idle(session: Session, command: Command) -> str:
    """RFC 2177: report changes as they happen until the client sends DONE."""
    count(command, 0)
    session.send(b"+ idling\r\n")
    await session.report_changes("IDLE", force=True)
    await session.flush()
    line = asyncio.ensure_future(session.read_line())
    try:
        while True:
            waiters: set[asyncio.Future] = {line}
            news = None
            changes = session.changes
            if changes is not None:
                news = asyncio.ensure_future(changes.get())
                waiters.add(news)
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if news is not None and news not in done:
                news.cancel()
            if changes is not None and news is not None and news in done:
                await changes.put(news.result())  # the session's own check drains it
                await session.report_changes("IDLE")
                await session.flush()
            if line in done:
                break
    finally:
        if not line.done():
            line.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await line
    if line.result().strip().upper() != b"DONE":
        raise ParseError("Expected DONE")
    return "IDLE terminated"


HANDLERS = {
    "CAPABILITY": capability,
    "NOOP": noop,
    "LOGOUT": logout,
    "ID": id_,
    "ENABLE": enable,
    "NAMESPACE": namespace,
    "IDLE": idle,
    "COMPRESS": compress,
}
