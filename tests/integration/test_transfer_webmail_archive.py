"""The webmail's account archive: a page, and a zip of mbox files that importmail reads back unchanged."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.transfer_support import FOLDERS, contents, fill
from transfer.archive import mbox_zip

pytestmark = pytest.mark.django_db


def test_page_and_sign_in(client, make_account) -> None:
    alice = make_account("alice@example.test")
    assert client.get("/settings/archive/").status_code == 302
    client.force_login(alice)
    page = client.get("/settings/archive/")
    assert page.status_code == 200
    assert b"All 6 folders (0 messages" in page.content
    assert b'href="/settings/archive/?download=mbox"' in page.content


def test_download_imports_back_unchanged(client, make_account, tmp_path: Path) -> None:
    alice = make_account("alice@example.test")
    fill(alice, 80)
    client.force_login(alice)
    response = client.get("/settings/archive/?download=mbox")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="alice@example.test ')
    assert response["Cache-Control"] == "private, no-store"
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == sorted(name + ".mbox" for name in FOLDERS)
        archive.extractall(tmp_path / "unzipped")
    bob = make_account("bob@example.test")
    call_command(
        "importmail", bob.address, "--format", "mbox", "--in", str(tmp_path / "unzipped"), stdout=io.StringIO()
    )
    assert contents(bob, whole_seconds=True) == contents(alice, whole_seconds=True)


def test_the_zip_comes_in_pieces(make_account) -> None:
    alice = make_account("alice@example.test")
    fill(alice, 40)
    pieces = list(mbox_zip(alice, chunk=1024))
    assert len(pieces) > 3
    with zipfile.ZipFile(io.BytesIO(b"".join(pieces))) as archive:
        assert archive.testzip() is None
