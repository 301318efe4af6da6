"""The console's audit query, the deletion guard's thresholds and the pickup history, on SQLite
and PostgreSQL."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from roster.domain.mode import Mode
from roster.domain.plan import Guard
from roster.jobs import imports as jobs
from roster.store import audit, directory_reads, recent_imports, tenants
from roster.store.db import writing
from tests.factories import csv_bytes, people

UTC_ZONE = ZoneInfo("UTC")


async def load(engine, tenant, rows, channel="csv", actor="fm@example.com"):
    return await jobs.run_import(
        engine, tenant.slug, csv_bytes(rows), mode=Mode.REPLACE, channel=channel, actor=actor
    )


async def search(engine, tenant, **wanted):
    async with engine.connect() as conn:
        return await audit.search(conn, tenant.id, audit.Filter(**wanted), UTC_ZONE)


async def test_events_newest_first_with_username_and_changes(engine, tenant):
    await load(engine, tenant, people(2))
    changed = people(2)
    changed[1]["CSV_TITLE"] = "Director"
    await load(engine, tenant, changed, channel="sftp", actor="pickup")
    events, older = await search(engine, tenant)
    assert not older
    assert [e.action for e in events] == ["updated", "added", "added"]
    updated = events[0]
    assert (updated.channel, updated.actor, updated.username) == ("sftp", "pickup", "user000001")
    assert updated.changes == [("title", "Manager", "Director")]
    assert ("username", None, "user000000") in next(
        e for e in events if e.username == "user000000"
    ).changes


async def test_filters_by_user_channel_actor_and_dates(engine, tenant):
    await load(engine, tenant, people(3))
    changed = people(3)
    changed[2]["CSV_TITLE"] = "Director"
    await load(engine, tenant, changed, channel="sftp", actor="pickup")
    assert [e.username for e in (await search(engine, tenant, user="R000002"))[0]] == [
        "user000002",
        "user000002",
    ]
    assert [e.action for e in (await search(engine, tenant, channel="sftp"))[0]] == ["updated"]
    assert len((await search(engine, tenant, actor="FM@"))[0]) == 3
    # A percent sign is text, not a wildcard.
    assert (await search(engine, tenant, user="%"))[0] == []
    today = datetime.now(UTC).date()
    assert len((await search(engine, tenant, since=today, until=today))[0]) == 4
    assert (await search(engine, tenant, until=today - timedelta(days=1)))[0] == []
    assert (await search(engine, tenant, since=today + timedelta(days=1)))[0] == []


async def test_pages_of_fifty(engine, tenant):
    await load(engine, tenant, people(audit.PER_PAGE + 3))
    first, older = await search(engine, tenant)
    assert len(first) == audit.PER_PAGE and older
    second, older = await search(engine, tenant, page=2)
    assert len(second) == 3 and not older
    assert not {e.id for e in first} & {e.id for e in second}


async def test_another_organizations_events_never_show(engine, tenant):
    async with writing(engine) as conn:
        other = await tenants.create(conn, f"t-{uuid4().hex[:10]}", "Other")
    await load(engine, other, people(2))
    assert (await search(engine, tenant))[0] == []
    assert (await search(engine, tenant, user="user"))[0] == []
    async with engine.connect() as conn:
        assert await recent_imports.by_channel(conn, tenant.id, "csv") == []
        assert len(await recent_imports.by_channel(conn, other.id, "csv")) == 1


async def test_removed_users_keep_their_name_in_the_log(engine, tenant):
    await load(engine, tenant, people(2))
    await load(engine, tenant, people(1))
    events, _ = await search(engine, tenant, user="user000001")
    assert [e.action for e in events] == ["removed", "added"]
    assert ("username", "user000001", None) in events[0].changes
    async with engine.connect() as conn:
        assert len(await directory_reads.list_users(conn, tenant.id)) == 1


async def test_guard_thresholds_are_checked_and_kept(engine, tenant):
    async with writing(engine) as conn:
        changed = await tenants.configure(conn, tenant.id, guard=Guard(25, 0))
        assert changed.guard == Guard(25, 0)
    async with engine.connect() as conn:
        assert (await tenants.by_id(conn, tenant.id)).guard == Guard(25, 0)
    for percent, minimum in ((0, 5), (101, 5), (10, -1), (10, 1_000_001)):
        with pytest.raises(tenants.TenantError):
            async with writing(engine) as conn:
                await tenants.configure(conn, tenant.id, guard=Guard(percent, minimum))
    async with engine.connect() as conn:
        assert (await tenants.by_id(conn, tenant.id)).guard == Guard(25, 0)


async def test_recent_imports_of_one_channel_newest_first(engine, tenant):
    await load(engine, tenant, people(1), channel="sftp")
    await load(engine, tenant, people(2), channel="csv")
    await load(engine, tenant, people(3), channel="sftp")
    async with engine.connect() as conn:
        found = await recent_imports.by_channel(conn, tenant.id, "sftp")
        assert [r.counts["added"] for r in found] == [1, 1]
        assert found[0].created_at >= found[1].created_at
        assert len(await recent_imports.by_channel(conn, tenant.id, "sftp", limit=1)) == 1
