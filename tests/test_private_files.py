"""Every file Roster creates is its own account's alone (files 0600, folders 0700), whatever the
umask: the database (password hashes, TOTP secrets), the mail outbox (live sign-in codes),
console and drop box uploads, the SFTP host key, pickup reports and the files of held pickups."""

import asyncio
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from roster import mail
from roster.domain.mode import Mode
from roster.files import private_copy, private_dir, private_file
from roster.jobs.pickup import pickup
from roster.settings import Settings
from roster.sftp import HOST_KEY
from roster.store import tenants
from roster.store.db import create_engine, dispose, exclusive, migrate, writing
from roster.web.console import staging
from tests.factories import csv_bytes, people
from tests.sftp.conftest import dropbox  # noqa: F401 (the fixture, under this module's umask)

FILE = "flexwhere - users.csv"


@pytest.fixture(autouse=True, params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process's umask for the whole test (fixtures included), restored afterwards."""
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def modes(root: Path) -> dict[str, str]:
    """Every file and folder under root (root included) with its permission bits."""
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def assert_private(root: Path) -> dict[str, str]:
    found = modes(root)
    wrong = {
        name: mode
        for name, mode in found.items()
        if mode != ("0o700" if (root / name).is_dir() else "0o600")
    }
    assert wrong == {}, f"not private: {wrong}"
    return found


async def test_the_sqlite_database_and_its_wal_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "var"
    engine = create_engine(f"sqlite:///{data_dir / 'roster.db'}")
    try:
        await migrate(engine)
        async with writing(engine) as conn:
            await tenants.create(conn, f"t-{uuid.uuid4().hex[:10]}", "Files")
        async with exclusive(engine, "pickup:x") as mine:
            assert mine
            async with engine.connect() as conn:  # the WAL and its index exist while open
                await conn.execute(sa.text("SELECT 1"))
                found = assert_private(tmp_path / "new")
    finally:
        await dispose(engine)
    assert {"var/roster.db", "var/roster.db-wal", "var/roster.db-shm", "var/locks"} <= set(found)
    assert any(name.endswith(".lock") for name in found)


async def test_the_mail_outbox_is_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    for n in range(2):  # created, then appended to
        await mail.send(settings, mail.Message(f"a{n}@example.com", "Your code: 123456", "..."))
    assert set(assert_private(tmp_path / "var")) == {".", "mail", "mail/outbox.jsonl"}


def test_console_uploads_are_private(tmp_path: Path) -> None:
    kept = staging.keep(tmp_path / "var", uuid.uuid4(), uuid.uuid4(), "a.csv", Mode.ADD, b"x")
    found = assert_private(tmp_path / "var")
    assert {f"console-uploads/{kept.id}.csv", f"console-uploads/{kept.id}.json"} <= set(found)


def test_the_helpers_leave_what_exists_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    (shared / "old").write_bytes(b"old")
    (shared / "old").chmod(0o644)
    private_dir(shared)
    private_file(shared / "old")
    private_copy(shared / "old", shared / "copy")
    assert modes(shared) == {".": "0o755", "old": "0o644", "copy": "0o600"}


async def test_the_drop_box_its_uploads_reports_and_host_key_are_private(
    dropbox,  # noqa: F811 (the fixture imported above)
    engine,
    tmp_path: Path,
) -> None:
    """An upload through the OpenSSH client, then pickups: one applied, one held."""
    source = tmp_path / "export.csv"
    source.write_bytes(csv_bytes(people(40)))
    source.chmod(0o644)  # the client asks for the local file's mode
    batch = f'put "{source}" "{FILE}"\n'
    command = [
        "sftp", "-P", str(dropbox.port), "-i", str(dropbox.key),
        "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", "-b", "-",
        f"{dropbox.slug}@127.0.0.1",
    ]  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run, command, input=batch, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert oct(stat.S_IMODE((dropbox.folder / FILE).stat().st_mode)) == "0o600"
    options = {"trigger": "cli", "max_bytes": dropbox.settings.max_import_bytes}
    assert (await pickup(engine, dropbox.folders, dropbox.slug, **options)).status == "applied"
    (dropbox.folder / FILE).write_bytes(csv_bytes(people(10)))  # a truncated export
    (dropbox.folder / FILE).chmod(0o600)
    assert (await pickup(engine, dropbox.folders, dropbox.slug, **options)).status == "held"
    found = assert_private(dropbox.settings.data_dir)
    assert HOST_KEY in found
    assert len([n for n in found if n.startswith(f"dropbox/{dropbox.slug}/results/")]) == 2
    assert len([n for n in found if n.startswith(f"dropbox/{dropbox.slug}/processed/")]) == 2
    assert len([n for n in found if n.startswith("dropbox/.held/")]) == 1
    assert {"dropbox", "dropbox/.uploads", f"dropbox/.claimed/{dropbox.slug}"} <= set(found)


def test_an_engine_on_an_open_database_keeps_its_locks(tmp_path):
    """Another engine made on a database this process has open (the CLI in-process, a reader)
    must not close a descriptor of it: that would drop this process's locks on it, and another
    process could then write beside a transaction in progress."""
    import sqlite3

    path = tmp_path / "roster.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # this process holds the write lock
    try:
        private_file(path)
        asyncio.run(dispose(create_engine(f"sqlite:///{path}")))
        other = subprocess.run(
            [
                "python3", "-c",
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0, "
                "isolation_level=None); c.execute('BEGIN IMMEDIATE')", str(path),
            ],
            capture_output=True, text=True,
        )  # fmt: skip
        assert other.returncode != 0 and "locked" in other.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()
