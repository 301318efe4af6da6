"""A drop box holds a bounded number of files and bytes at its top; an upload beyond either is
refused with a message that says why, and nothing of it is kept."""

import pytest
from asyncssh import SFTPError

from tests.sftp.test_openssh import _run, _with_key


async def test_an_upload_beyond_the_number_of_files_is_refused(dropbox, tmp_path):
    dropbox.settings.dropbox_max_files = 3
    source = tmp_path / "export.csv"
    source.write_bytes(b"data")
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        for n in range(3):
            await client.put(str(source), f"file{n}.csv")
        with pytest.raises(SFTPError, match="at most 3 files"):
            await client.put(str(source), "file3.csv")
        await client.put(str(source), "file0.csv")  # replacing a file adds none
        assert sorted(await client.listdir(".")) == [
            ".", "..", "file0.csv", "file1.csv", "file2.csv", "processed", "results"
        ]  # fmt: skip
    assert list(dropbox.folders.uploads.iterdir()) == []


async def test_uploads_in_progress_count_toward_the_files(dropbox):
    dropbox.settings.dropbox_max_files = 2
    async with (
        dropbox.connect() as conn,
        conn.start_sftp_client() as client,
        client.open("one.csv", "wb"),
        client.open("two.csv", "wb"),
    ):
        with pytest.raises(SFTPError, match="at most 2 files"):
            await client.open("three.csv", "wb")


async def test_an_upload_beyond_the_bytes_in_all_is_refused_and_not_kept(dropbox, tmp_path):
    dropbox.settings.dropbox_max_bytes = 1000
    (dropbox.folder / "waiting.csv").write_bytes(b"x" * 600)
    source = tmp_path / "export.csv"
    source.write_bytes(b"y" * 500)
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        with pytest.raises(SFTPError, match="at most 1000 bytes in all"):
            await client.put(str(source), "export.csv")
    assert not (dropbox.folder / "export.csv").exists()
    assert list(dropbox.folders.uploads.iterdir()) == []


async def test_openssh_sftp_fails_beyond_the_limit(dropbox, tmp_path):
    dropbox.settings.dropbox_max_files = 1
    source = tmp_path / "export.csv"
    source.write_bytes(b"data")
    done = await _run(_with_key(dropbox), f"put {source} one.csv\nput {source} two.csv\n")
    assert done.returncode != 0 and "failure" in done.stderr.lower()
    assert (dropbox.folder / "one.csv").exists() and not (dropbox.folder / "two.csv").exists()
    assert list(dropbox.folders.uploads.iterdir()) == []
