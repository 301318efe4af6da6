"""An organization's settings: each checked, all written or none, the drop box's next pickup
following a new time zone."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from roster.domain.plan import Guard
from roster.store import dropboxes, tenants
from roster.store.db import writing
from roster.store.schema import dropboxes as dropboxes_table


async def test_settings_change_together_and_the_next_pickup_follows_the_zone(engine, tenant):
    async with writing(engine) as conn:
        box = await dropboxes.enable(conn, tenant.id, tenant.timezone)
        await dropboxes.configure(conn, tenant.id, daily="02:00")
    async with writing(engine) as conn:
        changed = await tenants.configure(
            conn, tenant.id, name="  Acme Nederland B.V. ", timezone="Asia/Kolkata",
            retention_days=90, guard=Guard(20, 50),
        )  # fmt: skip
    assert (changed.name, changed.timezone, changed.retention_days, changed.guard) == (
        "Acme Nederland B.V.", "Asia/Kolkata", 90, Guard(20, 50),
    )  # fmt: skip
    async with engine.connect() as conn:
        box = await dropboxes.get(conn, tenant.id)
    # 02:00 in India is 20:30 UTC the day before.
    assert box.next_daily_at.astimezone(UTC).strftime("%H:%M") == "20:30"
    assert box.next_daily_at > datetime.now(UTC)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": " "}, "name"),
        ({"name": "Acme\x00"}, "name"),
        ({"name": "Acme\u2028Holding"}, "name"),  # a line break in a mail's subject
        ({"name": "Acme\u200bHolding"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"retention_days": 0}, "retention_days"),
        ({"retention_days": 3651}, "retention_days"),
        ({"guard": Guard(0, 5)}, "guard_percent"),
        ({"guard": Guard(10, 1_000_001)}, "guard_min_users"),
    ],
)
async def test_a_refused_setting_names_itself_and_nothing_is_written(engine, tenant, change, field):
    with pytest.raises(tenants.TenantError) as refused:
        async with writing(engine) as conn:
            await tenants.configure(conn, tenant.id, **({"name": "Renamed"} | change))
    assert refused.value.field == field
    async with engine.connect() as conn:
        assert await tenants.by_id(conn, tenant.id) == tenant  # the valid name neither


async def test_a_due_pickup_stays_due_whatever_is_saved(engine, tenant):
    async with writing(engine) as conn:
        await dropboxes.enable(conn, tenant.id, tenant.timezone)
        await conn.execute(
            sa.update(dropboxes_table)
            .where(dropboxes_table.c.tenant_id == tenant.id)
            .values(next_daily_at=datetime.now(UTC) - timedelta(minutes=10))  # missed: catch up
        )
    async with writing(engine) as conn:  # the Settings form sends every field, its zone too
        await tenants.configure(conn, tenant.id, timezone=tenant.timezone, retention_days=60)
    async with writing(engine) as conn:
        await tenants.configure(conn, tenant.id, timezone="Europe/Amsterdam")
    async with engine.connect() as conn:
        assert (await dropboxes.get(conn, tenant.id)).due(datetime.now(UTC))
    async with writing(engine) as conn:  # no other test's scheduler should find it due
        await dropboxes.disable(conn, tenant.id)
