"""The webmail's archive download under the real ASGI server (uvicorn): streamed as it is made, a valid zip
whose mbox files importmail reads back unchanged."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

from tests.conftest import PASSWORD
from tests.transfer_support import FOLDERS, contents, fill


@pytest.fixture
def session(web_server, transactional_db) -> requests.Session:
    return requests.Session()


def sign_in(session: requests.Session, url: str, address: str) -> None:
    page = session.get(f"{url}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text
    reply = session.post(
        f"{url}/login/",
        data={"csrfmiddlewaretoken": token.group(1), "address": address, "password": PASSWORD, "next": "/"},
        headers={"Referer": f"{url}/login/"},
        timeout=10,
    )
    assert reply.ok
    assert "/login/" not in reply.url


def test_archive_streams_under_asgi(web_server, session, make_account, tmp_path: Path) -> None:
    alice = make_account("alice@example.test")
    fill(alice, 120)
    sign_in(session, web_server.url, alice.address)
    with session.get(f"{web_server.url}/settings/archive/?download=mbox", stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/zip"
        assert "Content-Length" not in response.headers  # streamed, not built whole first
        data = b"".join(response.iter_content(65536))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == sorted(name + ".mbox" for name in FOLDERS)
        archive.extractall(tmp_path)
    bob = make_account("bob@example.test")
    call_command("importmail", bob.address, "--format", "mbox", "--in", str(tmp_path), stdout=io.StringIO())
    assert contents(bob, whole_seconds=True) == contents(alice, whole_seconds=True)
