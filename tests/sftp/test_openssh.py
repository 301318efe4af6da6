"""The OpenSSH `sftp` client, unchanged, against the drop box, as an uploader's script runs it."""

import asyncio
import os
import signal
import stat
import subprocess

import asyncssh

from roster import sftp
from tests.sftp.conftest import PASSWORD

FILE = "flexwhere - users.csv"


def _sftp(dropbox, *options: str) -> list[str]:
    return [
        "sftp",
        "-P", str(dropbox.port),
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=no",
        "-o", "LogLevel=ERROR",
        *options,
        f"{dropbox.slug}@127.0.0.1",
    ]  # fmt: skip


def _with_key(dropbox) -> list[str]:
    return _sftp(dropbox, "-i", str(dropbox.key), "-o", "IdentitiesOnly=yes", "-b", "-")


async def _run(command: list[str], batch: str, **env: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        command,
        input=batch,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


async def test_a_script_uploads_with_its_key(dropbox, tmp_path):
    source = tmp_path / "export.csv"
    source.write_bytes(b"CSV_USERNAME;CSV_EMAIL\r\n")
    done = await _run(_with_key(dropbox), f'put {source} "{FILE}"\nls -l\n')
    assert done.returncode == 0, done.stderr
    assert (dropbox.folder / FILE).read_bytes() == source.read_bytes()
    listing = [line for line in done.stdout.splitlines() if line.endswith(f" {FILE}")]
    assert listing and "roster   roster" in listing[0]  # no names of the server's own accounts


async def test_a_script_uploads_with_a_password(dropbox, tmp_path):
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    askpass.chmod(stat.S_IRWXU)
    source = tmp_path / "export.csv"
    source.write_bytes(b"data")
    command = _sftp(
        dropbox, "-o", "BatchMode=no", "-o", "PubkeyAuthentication=no", "-b", "-"
    )  # `-b` alone turns password prompts off (BatchMode), as the README tells admins
    done = await _run(
        command, f'put {source} "{FILE}"\n', SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force"
    )
    assert done.returncode == 0, done.stderr
    assert (dropbox.folder / FILE).read_bytes() == b"data"


async def test_writing_outside_the_top_fails_for_the_script(dropbox, tmp_path):
    source = tmp_path / "export.csv"
    source.write_bytes(b"data")
    for batch in (f"put {source} results/x.csv\n", "mkdir mine\n", "symlink /etc ./etc\n"):
        done = await _run(_with_key(dropbox), batch)
        assert done.returncode != 0
        assert "denied" in done.stderr.lower() or "not allowed" in done.stderr.lower()


async def test_a_killed_client_leaves_no_partial_file(dropbox, tmp_path):
    (dropbox.folder / FILE).write_bytes(b"yesterday's complete file")
    source = tmp_path / "export.csv"
    source.write_bytes(b"x" * 150_000)
    # 160 kbit/s in 1 KB requests, one at a time: the upload takes seconds, and is cut off.
    batch = tmp_path / "batch"
    batch.write_text(f'put {source} "{FILE}"\n')
    command = _with_key(dropbox)
    command[-2:-1] = [str(batch), "-l", "160", "-B", "1024", "-R", "1"]
    client = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        await asyncio.sleep(0.1)
        staged = list(dropbox.folders.uploads.iterdir())
        if staged and staged[0].stat().st_size > 20_000:
            break
    else:
        raise AssertionError(f"the upload did not start (client exit status {client.poll()})")
    client.send_signal(signal.SIGKILL)
    client.wait()
    await asyncio.sleep(0.5)
    assert (dropbox.folder / FILE).read_bytes() == b"yesterday's complete file"
    assert list(dropbox.folders.uploads.iterdir()) == []


def test_the_host_key_is_made_once_and_kept(tmp_path):
    first = sftp.host_key(tmp_path)
    again = sftp.host_key(tmp_path)
    assert first.get_fingerprint() == again.get_fingerprint()
    assert stat.S_IMODE((tmp_path / sftp.HOST_KEY).stat().st_mode) == 0o600
    assert isinstance(first, asyncssh.SSHKey)
