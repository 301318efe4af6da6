"""The per-request token check answers exactly as `sessions.find` does, on both databases."""

from datetime import timedelta

import sqlalchemy as sa

from roster.domain.mode import Mode
from roster.jobs import people
from roster.jobs.imports import run_import
from roster.store import directory_reads, sessions
from roster.store.db import writing
from roster.store.prepared import DirectReads
from roster.store.schema import sessions as sessions_table
from roster.store.token_check import TokenCheck
from tests.factories import csv_bytes, person


async def test_the_check_agrees_with_the_store(engine, tenant):
    rows = [person(n, CSV_EMAIL=f"p{n}@{tenant.slug}.example") for n in range(4)]
    await run_import(engine, tenant.slug, csv_bytes(rows), mode=Mode.ADD, channel="cli", actor="t")
    async with writing(engine) as conn:
        ids = [u["id"] for u in await directory_reads.list_users(conn, tenant.id)]
        tokens = [
            (await sessions.create_app(conn, tenant.id, i, timedelta(hours=1), timedelta(days=1)))[
                1
            ]
            for i in ids
        ]
    reads = DirectReads(engine)
    check = TokenCheck(reads)
    try:
        # Live, then each way a token stops working: revoked, expired, user inactive, removed.
        found = await check.session(tokens[0], "app")
        assert found is not None and found.user_id == ids[0] and found.tenant_id == tenant.id
        async with writing(engine) as conn:
            session = await sessions.find(conn, tokens[1], "app")
            assert session is not None
            await sessions.revoke(conn, tenant.id, session.id)
            expiring = await sessions.find(conn, tokens[2], "app")
            assert expiring is not None
            await conn.execute(
                sessions_table.update()
                .where(sessions_table.c.id == expiring.id)
                .values(expires_at=sa.func.current_timestamp())
            )
        await people.change(engine, tenant.id, ids[3], {"active": False}, channel="cli", actor="t")
        for token in tokens[1:]:
            assert await check.session(token, "app") is None
        assert await check.session(tokens[0], "console") is None  # another kind of session
        for garbage in ("", "x", tokens[0] + "x", tokens[0].replace(tenant.id.hex, "0" * 32)):
            assert await check.session(garbage, "app") is None
        async with engine.connect() as conn:
            for token in tokens:
                from_store = await sessions.find(conn, token, "app")
                from_check = await check.session(token, "app")
                assert (from_store is None) == (from_check is None)
                if from_store and from_check:
                    assert from_store.id == from_check.id
                    assert from_store.expires_at == from_check.expires_at
    finally:
        await reads.close()
