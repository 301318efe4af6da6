"""SQLite's one write lock: the writers of a process (SQLAlchemy's and DirectWrites') take turns
first come, first served; a writer of another process makes them wait without blocking the
event loop, and for no longer than SQLite's busy timeout."""

import asyncio
import sqlite3
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from roster.store import db, prepared
from roster.store.db import Unavailable, create_engine, sqlite_file, writing
from roster.store.prepared import DirectWrites
from roster.store.schema import tenants

pytestmark = pytest.mark.usefixtures("sqlite_only")

RENAME = tenants.update().where(tenants.c.tenant_id == sa.bindparam("t"))


@pytest.fixture
def sqlite_only(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")


async def _name(engine, tenant) -> str:
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.select(tenants.c.name).where(tenants.c.tenant_id == tenant.id)
        )
        return str(found.scalar_one())


async def test_writers_of_one_process_take_turns_in_order_of_arrival(engine, tenant):
    writes = DirectWrites(engine)
    finished: list[int] = []

    async def writer(n: int) -> None:
        values = {"t": tenant.id, "name": f"writer {n}"}
        if n % 2:
            async with writes.transaction() as tx:
                await prepared.prepared(RENAME).run(tx, values)
        else:
            async with writing(engine) as conn:
                await conn.execute(RENAME, values)
                await asyncio.sleep(0)  # a turn held across awaits, as a real request holds it
        finished.append(n)

    try:
        async with writing(engine) as conn:  # everyone queues behind this one
            await conn.execute(RENAME, {"t": tenant.id, "name": "first"})
            waiting = []
            for n in range(12):
                waiting.append(asyncio.create_task(writer(n)))
                await asyncio.sleep(0)  # arrives, and queues
        await asyncio.gather(*waiting)
    finally:
        await writes.close()
    assert finished == list(range(12))
    assert await _name(engine, tenant) == "writer 11"


def _other_process_writing(engine) -> sqlite3.Connection:
    """A connection of its own holding the write lock, as a CLI import in another process
    does."""
    other = sqlite3.connect(engine.url.database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_writer_of_another_process_is_waited_for_without_blocking(engine, tenant):
    writes = DirectWrites(engine)
    other = _other_process_writing(engine)
    # The other process ends its transaction in 0.5 s, whatever this loop does meanwhile.
    ending = threading.Timer(0.5, other.execute, ("COMMIT",))
    try:
        name = f"after {uuid.uuid4().hex[:6]}"

        async def direct() -> None:
            async with writes.transaction() as tx:
                await prepared.prepared(RENAME).run(tx, {"t": tenant.id, "name": name})

        ending.start()
        waiting = asyncio.create_task(direct())
        longest_gap, last = 0.0, time.monotonic()
        while not waiting.done():  # the loop keeps serving while the write waits
            await asyncio.sleep(0.005)
            longest_gap, last = max(longest_gap, time.monotonic() - last), time.monotonic()
        await waiting
    finally:
        ending.join()
        other.close()
        await writes.close()
    assert longest_gap < 0.25  # blocked in a busy handler, the loop would have stood 0.5 s
    assert await _name(engine, tenant) == name


async def test_a_writer_gives_up_after_the_busy_timeout_and_writes_nothing(
    engine, tenant, monkeypatch
):
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)
    before = await _name(engine, tenant)
    writes = DirectWrites(engine)
    other = _other_process_writing(engine)
    started = time.monotonic()
    try:
        with pytest.raises(Unavailable):
            async with writes.transaction() as tx:
                await prepared.prepared(RENAME).run(tx, {"t": tenant.id, "name": "never"})
    finally:
        other.close()
    assert time.monotonic() - started >= 0.2  # it waited its time before giving up
    try:
        with pytest.raises(RuntimeError):  # rolled back at the end
            async with writing(engine) as conn:  # this process's turn, held too long
                await conn.execute(RENAME, {"t": tenant.id, "name": "held"})
                with pytest.raises(Unavailable):
                    async with writes.transaction() as tx:
                        await prepared.prepared(RENAME).run(tx, {"t": tenant.id, "name": "x"})
                raise RuntimeError
    finally:
        await writes.close()
    assert await _name(engine, tenant) == before


async def test_a_commit_that_fails_is_sqlalchemys_error_and_the_next_write_goes_through(
    engine, tenant
):
    writes = DirectWrites(engine)
    try:
        with pytest.raises(sa.exc.IntegrityError):
            async with writes.transaction() as tx:
                # A link to no group and no user, its foreign keys checked only at COMMIT.
                await tx.run("PRAGMA defer_foreign_keys=ON", (), fetch=False)
                await tx.run(
                    "INSERT INTO group_members (tenant_id, group_id, user_id) VALUES (?, ?, ?)",
                    (tenant.id.hex, uuid.uuid4().hex, uuid.uuid4().hex),
                    fetch=False,
                )
        async with writes.transaction() as tx:
            await prepared.prepared(RENAME).run(tx, {"t": tenant.id, "name": "went through"})
    finally:
        await writes.close()
    assert await _name(engine, tenant) == "went through"


def test_roster_s_own_connections_open_the_engines_file_or_refuse(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = create_engine("sqlite:///data/roster.db")
    assert sqlite_file(relative) == str(tmp_path / "data" / "roster.db")
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:roster.db?uri=true"):
        with pytest.raises(ValueError, match="must be a file path"):
            sqlite_file(create_engine(url))
