"""Statements run on the driver (store.prepared) give what SQLAlchemy gives, on both databases:
the same rows and types, the same writes, the same errors."""

import asyncio
import contextlib
import uuid

import pytest
import sqlalchemy as sa

from roster.domain.mode import Mode
from roster.domain.plan import Addition, Plan, new_user
from roster.jobs.imports import run_import
from roster.store import directory
from roster.store.db import create_engine, dispose, read_engine, writing
from roster.store.prepared import DirectReads, DirectWrites, prepared
from roster.store.schema import audit_events, users
from tests.factories import csv_bytes, person

BY_TENANT = sa.select(users).where(users.c.tenant_id == sa.bindparam("t")).order_by(users.c.id)


async def test_rows_are_what_sqlalchemy_gives(engine, tenant):
    rows = [person(n, CSV_EMAIL=f"p{n}@{tenant.slug}.example", CSV_EHBO="1") for n in range(3)]
    await run_import(engine, tenant.slug, csv_bytes(rows), mode=Mode.ADD, channel="cli", actor="t")
    async with writing(engine) as conn:  # an extension attribute kept as JSON, and a NULL
        await conn.execute(
            users.update()
            .where(users.c.tenant_id == tenant.id)
            .values(extra={"employeeNumber": "42"}, title=None)
        )
    async with engine.connect() as conn:
        expected = [dict(row._mapping) for row in await conn.execute(BY_TENANT, {"t": tenant.id})]
        on_driver = await prepared(BY_TENANT).rows(conn, {"t": tenant.id})
    reads = DirectReads(engine)
    try:
        direct = await prepared(BY_TENANT).rows(reads, {"t": tenant.id})
        missing = await prepared(BY_TENANT).first(reads, {"t": uuid.uuid4()})
    finally:
        await reads.close()
    assert len(expected) == 3 and expected[0]["extra"] == {"employeeNumber": "42"}
    for found in (on_driver, direct):
        assert found == expected
        assert [{k: type(v) for k, v in r.items()} for r in found] == [
            {k: type(v) for k, v in r.items()} for r in expected
        ]
    assert missing is None


async def test_writes_join_the_callers_transaction_and_fail_as_sqlalchemy_does(engine, tenant):
    rows = [person(n, CSV_EMAIL=f"w{n}@{tenant.slug}.example") for n in range(2)]
    await run_import(engine, tenant.slug, csv_bytes(rows), mode=Mode.ADD, channel="cli", actor="t")
    rename = (
        users.update()
        .where(users.c.tenant_id == sa.bindparam("t"), users.c.id == sa.bindparam("uid"))
        .values(title=sa.bindparam("title"))
    )
    async with engine.connect() as conn:
        first, second = [dict(r._mapping) for r in await conn.execute(BY_TENANT, {"t": tenant.id})]
    with pytest.raises(RuntimeError):  # rolled back with the transaction it ran in
        async with writing(engine) as conn:
            count = await prepared(rename).run(
                conn, {"t": tenant.id, "uid": first["id"], "title": "Gone"}
            )
            assert count == 1
            raise RuntimeError
    taken = users.update().where(
        users.c.tenant_id == sa.bindparam("t"), users.c.id == sa.bindparam("uid")
    )
    with pytest.raises(sa.exc.IntegrityError):  # a unique index, as conn.execute would say
        async with writing(engine) as conn:
            values = {"t": tenant.id, "uid": second["id"], "username_key": first["username_key"]}
            await prepared(taken).run(conn, values)
    async with read_engine(engine).connect() as conn:
        after = await prepared(BY_TENANT).rows(conn, {"t": tenant.id})
    assert [r["title"] for r in after] == [first["title"], second["title"]]
    assert [r["username_key"] for r in after] == [first["username_key"], second["username_key"]]


async def test_direct_writes_apply_a_one_user_plan_as_sqlalchemy_does(engine, tenant):
    writes = DirectWrites(engine)
    values = new_user(
        {
            "username": f"direct@{tenant.slug}.example",
            "first_name": "Dirk",
            "surname": "Direct",
            "display_name": "Dirk Direct",
            "email": f"direct@{tenant.slug}.example",
            "extra": {"employeeNumber": "7"},
        }
    )
    plan = Plan(added=[Addition(None, values, managed_by="scim")])
    try:
        async with writes.transaction() as tx:
            (written,) = await directory.apply(
                tx, tenant.id, plan, channel="scim", actor="t", returning=True
            )
        with pytest.raises(sa.exc.IntegrityError):  # the same username again: refused, as ever
            async with writes.transaction() as tx:
                await directory.apply(tx, tenant.id, plan, channel="scim", actor="t")
        with pytest.raises(RuntimeError):  # a transaction that fails leaves nothing behind
            async with writes.transaction() as tx:
                other = {**values, "username": "x@y.example", "email": "x@y.example"}
                again = Plan(added=[Addition(None, other)])
                await directory.apply(tx, tenant.id, again, channel="scim", actor="t")
                raise RuntimeError
        async with writes.transaction() as tx:  # one row's statement runs there
            await directory.revoke_sessions(tx, tenant.id, [written["id"]])
        with pytest.raises(TypeError):  # statements of many rows need SQLAlchemy's connection
            async with writes.transaction() as tx:
                await directory.revoke_sessions(tx, tenant.id, [written["id"], uuid.uuid4()])
    finally:
        await writes.close()
    async with engine.connect() as conn:
        stored = [dict(r._mapping) for r in await conn.execute(BY_TENANT, {"t": tenant.id})]
        events = (
            await conn.execute(
                sa.select(audit_events.c.action, audit_events.c.channel).where(
                    audit_events.c.tenant_id == tenant.id
                )
            )
        ).all()
    assert stored == [written]
    assert written["extra"] == {"employeeNumber": "7"} and written["managed_by"] == "scim"
    assert [tuple(e) for e in events] == [("added", "scim")]


async def test_a_dropped_connection_costs_at_most_one_write_and_no_read(engine, tenant):
    if engine.dialect.name != "postgresql":
        pytest.skip("asyncpg connections lent by the pool exist on PostgreSQL only")
    reads, writes = DirectReads(engine), DirectWrites(engine)
    sessions = users.update().where(users.c.tenant_id == sa.bindparam("t"))
    everyone_else = sa.text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    connections = engine.pool.size()
    try:
        lent = await asyncio.gather(  # every connection of the pool opened
            *(prepared(BY_TENANT).rows(reads, {"t": tenant.id}) for _ in range(2 * connections))
        )
        assert lent == [[]] * (2 * connections)
        async with writes.transaction() as tx:
            await prepared(sessions).run(tx, {"t": tenant.id, "title": None})
        async with engine.connect() as conn:  # as a database restart would
            await conn.execute(everyone_else)
        for _ in range(connections + 1):  # a read retries once, on a connection made anew
            assert await prepared(BY_TENANT).rows(reads, {"t": tenant.id}) == []
        failed = 0
        for _ in range(connections + 1):
            try:
                async with writes.transaction() as tx:
                    assert await prepared(sessions).run(tx, {"t": tenant.id, "title": None}) == 0
            except Exception:
                failed += 1  # a transaction that met the dropped connection before asyncpg did
        assert failed <= 1
    finally:
        await reads.close()
        await writes.close()


async def test_add_user_writes_the_user_and_its_audit_event_as_apply_does(engine, tenant):
    """directory.add_user (a SCIM create, one statement on PostgreSQL) against apply in a
    SQLAlchemy transaction: the same rows and events, and a clash writes neither."""

    def addition(login: str) -> Addition:
        values = new_user(
            {
                "username": f"{login}@{tenant.slug}.example",
                "first_name": "Ada",
                "surname": login.title(),
                "display_name": f"Ada {login.title()}",
                "email": f"{login}@{tenant.slug}.example",
                "extra": {"employeeNumber": login},
            }
        )
        return Addition(None, values, managed_by="scim")

    writes = DirectWrites(engine)
    try:
        added = await directory.add_user(
            writes, tenant.id, addition("direct"), channel="scim", actor="token t"
        )
        with pytest.raises(sa.exc.IntegrityError):  # the username again: refused
            await directory.add_user(
                writes, tenant.id, addition("direct"), channel="scim", actor="token t"
            )
    finally:
        await writes.close()
    async with writing(engine) as conn:
        plan = Plan(added=[addition("applied")])
        (applied,) = await directory.apply(
            conn, tenant.id, plan, channel="scim", actor="token t", returning=True
        )
    async with engine.connect() as conn:
        stored = [dict(r._mapping) for r in await conn.execute(BY_TENANT, {"t": tenant.id})]
        events = [
            dict(r._mapping)
            for r in await conn.execute(
                sa.select(audit_events).where(audit_events.c.tenant_id == tenant.id)
            )
        ]
    assert sorted(stored, key=lambda r: r["username"]) == [applied, added]
    differing = {"id", "username", "username_key", "surname", "display_name", "email"}
    differing |= {"email_key", "search_text", "display_name_sort_key", "extra"}
    differing |= {"created_at", "updated_at"}
    assert {k: v for k, v in added.items() if k not in differing} == {
        k: v for k, v in applied.items() if k not in differing
    }
    by_user = {e["user_id"]: e for e in events}
    assert len(events) == 2 and set(by_user) == {added["id"], applied["id"]}
    for row in (added, applied):
        event = by_user[row["id"]]
        assert (event["action"], event["channel"], event["actor"]) == ("added", "scim", "token t")
        assert event["user_version"] == 1 and event["before"] is None
        assert event["after"]["username"] == row["username"] and event["at"] == row["created_at"]


async def test_a_write_cancelled_midway_leaves_its_connection_to_no_one(engine, tenant):
    """A task cancelled anywhere in its write (a client gone, a shutdown), even while BEGIN is
    on its way, must not hand the next writer a connection still inside its transaction, where
    writes never commit."""
    if engine.dialect.name != "postgresql":
        pytest.skip("asyncpg connections lent by the pool exist on PostgreSQL only")
    # The smallest budget lends one connection: every write takes its turn on that lease.
    single = create_engine(engine.url.render_as_string(hide_password=False), connections=4)
    writes = DirectWrites(single)

    async def slow() -> None:
        async with writes.transaction() as tx:
            await tx.run("SELECT pg_sleep(5)", (), fetch=True)

    def addition(n: int) -> Addition:
        login = f"after-cancel-{n}@{tenant.slug}.example"
        values = new_user(
            {
                "username": login,
                "first_name": "Cy",
                "surname": "Cancel",
                "display_name": "Cy Cancel",
                "email": login,
            }
        )
        return Addition(None, values, managed_by="scim")

    try:
        for n in range(40):  # cancelled after n turns of the loop: in the pool, BEGIN, the sleep
            task = asyncio.create_task(slow())
            for _ in range(n):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await directory.add_user(writes, tenant.id, addition(n), channel="scim", actor="t")
    finally:
        await writes.close()
        await dispose(single)
    async with engine.connect() as conn:
        stored = [dict(r._mapping) for r in await conn.execute(BY_TENANT, {"t": tenant.id})]
    assert len(stored) == 40
