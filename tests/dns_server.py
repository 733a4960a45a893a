"""A small authoritative DNS server on loopback UDP, built on dnspython's message API, for relay tests.

Names with records answer them (NOERROR with no data for other types); names listed in `servfail` answer
SERVFAIL; names in `silent` get no answer at all (a timeout); every other name is NXDOMAIN.
"""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def _key(name: str) -> str:
    return name.lower().rstrip(".")


class DnsServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.servfail: set[str] = set()
        self.silent: set[str] = set()
        self.queries: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self._sock.settimeout(0.2)  # so the serving thread notices `close`
        self._stop = threading.Event()
        self.host, self.port = self._sock.getsockname()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """The MAILSITE_DNS_NAMESERVERS value that points at this server."""
        return f"{self.host}:{self.port}"

    def add(self, name: str, rdtype: str, *values: str) -> None:
        """add("example.net", "MX", "10 mx1.example.net.") - values in zone-file syntax."""
        self.records.setdefault((_key(name), rdtype.upper()), []).extend(values)

    def clear(self) -> None:
        self.records.clear()
        self.servfail.clear()
        self.silent.clear()
        self.queries.clear()

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = _key(question.name.to_text())
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name in self.silent:
            return None
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rdtype) in self.records:
            values = self.records[(name, rdtype)]
            response.answer.append(dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, rdtype, values))
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            try:
                response = self.answer(dns.message.from_wire(data))
            except Exception:  # a malformed query gets no answer, like a real server under garbage
                continue
            if response is not None:
                self._sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
