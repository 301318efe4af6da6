"""The SFTP server through asyncssh's client: who gets in, what an account can reach, and which
uploads are kept."""

import asyncio
import logging
import os

import asyncssh
import pytest
from asyncssh.sftp import SFTPError, SFTPNoSuchFile, SFTPPermissionDenied

from roster.store import dropboxes
from roster.store.db import writing
from tests.sftp.conftest import PASSWORD, enable, make_key

FILE = "flexwhere - users.csv"


async def test_the_account_logs_in_with_its_password_or_its_key(dropbox):
    login = dropbox.connect(client_keys=None, password=PASSWORD)
    async with login as conn, conn.start_sftp_client() as client:
        assert sorted(await client.listdir(".")) == [".", "..", "processed", "results"]
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        assert await client.isdir("results")


async def _refused(dropbox, **options) -> str:
    with pytest.raises(asyncssh.PermissionDenied) as caught:
        async with dropbox.connect(**options):
            pass
    return str(caught.value)


async def test_every_wrong_login_is_refused_alike(dropbox, tmp_path):
    stranger = make_key(tmp_path / "stranger")
    wrong_password = await _refused(dropbox, client_keys=None, password="not the password!")
    unknown_user = await _refused(
        dropbox, username="nobody-here", client_keys=None, password=PASSWORD
    )
    wrong_key = await _refused(dropbox, client_keys=[str(stranger)])
    assert wrong_password == wrong_key
    assert unknown_user.replace("nobody-here", dropbox.slug) == wrong_password


async def test_a_disabled_account_cannot_log_in(dropbox, engine):
    async with writing(engine) as conn:
        await dropboxes.disable(conn, dropbox.tenant.id)
    await _refused(dropbox, client_keys=None, password=PASSWORD)
    await _refused(dropbox)


async def test_failed_logins_are_limited_and_logged(dropbox, caplog):
    caplog.set_level(logging.WARNING, logger="roster.sftp")
    for _ in range(dropbox.settings.sftp_failed_logins_per_minute):
        await _refused(dropbox, client_keys=None, password="guessing again...")
    # Now even the right password is refused for a while: guessing cannot go on.
    await _refused(dropbox, client_keys=None, password=PASSWORD)
    assert any("too many failures" in r.getMessage() for r in caplog.records)
    assert any("login failed" in r.getMessage() for r in caplog.records)
    assert not any(PASSWORD in r.getMessage() for r in caplog.records)


async def test_keys_a_client_tries_first_do_not_lock_it_out(dropbox, tmp_path):
    others = [str(make_key(tmp_path / f"other{n}")) for n in range(8)]
    for _ in range(2):  # an agent full of keys, twice: more offers than the password limit
        login = dropbox.connect(client_keys=[*others, str(dropbox.key)])
        async with login as conn, conn.start_sftp_client() as client:
            assert await client.isdir("results")


async def test_upload_overwrite_list_and_remove_own_files(dropbox, tmp_path):
    source = tmp_path / "a.csv"
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        for content in (b"first", b"second, longer"):
            source.write_bytes(content)
            await client.put(str(source), "notes.txt")
            async with client.open("notes.txt", "rb") as handle:
                assert await handle.read() == content
        assert "notes.txt" in await client.listdir(".")
        await client.remove("notes.txt")
        assert "notes.txt" not in await client.listdir(".")
    assert list(dropbox.folders.uploads.iterdir()) == []


async def test_results_are_readable_but_not_writable(dropbox, tmp_path):
    (dropbox.folders.results(dropbox.slug) / "report.txt").write_text("the report")
    source = tmp_path / "x.txt"
    source.write_bytes(b"x")
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        async with client.open("results/report.txt", "rb") as handle:
            assert await handle.read() == b"the report"
        with pytest.raises(SFTPPermissionDenied):
            await client.put(str(source), "results/x.txt")
        with pytest.raises(SFTPPermissionDenied):
            await client.mkdir("mine")
        with pytest.raises(SFTPPermissionDenied):
            await client.rename("results/report.txt", "report.txt")
        await client.put(str(source), "mine.txt")
        for move in (client.rename, client.posix_rename):
            with pytest.raises(SFTPPermissionDenied):
                await move("mine.txt", "results/report.txt")  # over the report
    assert (dropbox.folders.results(dropbox.slug) / "report.txt").read_text() == "the report"
    assert (dropbox.folder / "mine.txt").exists()


async def test_no_path_leads_out_of_the_folder(dropbox, engine, tmp_path, tenant):
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        for path in ("../../..", "/..", "/", "."):
            assert sorted(await client.listdir(path)) == [".", "..", "processed", "results"]
        for path in (str(outside), "../secret.txt", "/../../secret.txt", "/etc/passwd"):
            with pytest.raises(SFTPNoSuchFile):
                await client.stat(path)
        with pytest.raises(SFTPPermissionDenied):
            await client.symlink(str(outside), "link")
        with pytest.raises(SFTPPermissionDenied):
            await client.link("results", "hard")
        source = tmp_path / "up.txt"
        source.write_bytes(b"data")
        await client.put(str(source), "../../escaped.txt")  # lands in the folder, at its top
        await client.rename("escaped.txt", "../../../escaped-again.txt")
    assert (dropbox.folder / "escaped-again.txt").exists()
    assert not (tmp_path / "escaped-again.txt").exists()
    assert not (dropbox.folders.root / "escaped-again.txt").exists()


async def test_a_link_already_in_the_folder_is_not_followed_out(dropbox, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    os.symlink(outside, dropbox.folder / "planted")
    os.symlink(tmp_path, dropbox.folder / "planted-dir")
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        with pytest.raises(SFTPPermissionDenied):
            await client.open("planted", "rb")
        with pytest.raises(SFTPPermissionDenied):
            await client.listdir("planted-dir")
        with pytest.raises(SFTPPermissionDenied):
            await client.open("planted", "wb")
    assert outside.read_text() == "not yours"


async def test_another_organizations_folder_is_out_of_reach(dropbox, engine, tmp_path):
    async with writing(engine) as conn:
        from roster.store import tenants

        other = await tenants.create(conn, f"{dropbox.slug}-other", "Other")
    await enable(engine, other, make_key(tmp_path / "other"))
    dropbox.folders.prepare(other.slug)
    (dropbox.folders.account(other.slug) / FILE).write_text("their people")
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        for path in (f"../{other.slug}/{FILE}", f"/../{other.slug}/{FILE}"):
            with pytest.raises(SFTPNoSuchFile):
                await client.stat(path)
    # Their key does not open this account, nor this key theirs.
    await _refused_for(dropbox, other.slug)


async def _refused_for(dropbox, username):
    with pytest.raises(asyncssh.PermissionDenied):
        async with dropbox.connect(username=username):
            pass


async def test_an_upload_over_the_limit_is_refused_and_not_kept(dropbox, tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * (dropbox.settings.max_import_bytes + 1))
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        with pytest.raises(SFTPError, match="limited to"):
            await client.put(str(big), FILE)
        assert FILE not in await client.listdir(".")
    assert list(dropbox.folders.uploads.iterdir()) == []


async def test_a_cut_upload_is_not_kept_and_the_previous_file_stays(dropbox, engine):
    (dropbox.folder / FILE).write_bytes(b"the complete file of yesterday")
    conn = await dropbox.connect()
    client = await conn.start_sftp_client()
    handle = await client.open(FILE, "wb")
    await handle.write(b"half of today's fi")
    conn.abort()  # the connection drops with the file open
    await asyncio.sleep(0.5)
    assert (dropbox.folder / FILE).read_bytes() == b"the complete file of yesterday"
    assert list(dropbox.folders.uploads.iterdir()) == []
    async with engine.connect() as c:
        assert (await dropboxes.get(c, dropbox.tenant.id)).last_upload_at is None


async def test_a_session_that_ends_with_the_file_open_is_not_kept(dropbox):
    async with dropbox.connect() as conn:
        client = await conn.start_sftp_client()
        handle = await client.open(FILE, "wb")
        await handle.write(b"USERNAME;")
        client.exit()  # the session ends without closing the file
        await client.wait_closed()
    await asyncio.sleep(0.3)
    assert not (dropbox.folder / FILE).exists()


async def test_a_complete_upload_is_recorded(dropbox, engine, tmp_path):
    source = tmp_path / "users.csv"
    source.write_bytes(b"CSV_USERNAME\r\n")
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        await client.put(str(source), FILE + ".filepart")
        await client.posix_rename(FILE + ".filepart", FILE)
    for _ in range(50):
        async with engine.connect() as c:
            box = await dropboxes.get(c, dropbox.tenant.id)
        if box.last_upload_at:
            break
        await asyncio.sleep(0.1)
    assert box.last_upload_at is not None
    assert (dropbox.folder / FILE).read_bytes() == b"CSV_USERNAME\r\n"
