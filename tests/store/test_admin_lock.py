"""Failed console sign-ins: the lock holds, every failure counts, codes work once."""

import asyncio
from datetime import UTC, datetime, timedelta

from roster.domain.passwords import hash_password
from roster.jobs import people
from roster.store import admins, sessions
from roster.store.db import writing


async def _admin(engine, tenant) -> admins.Admin:
    raw = {
        "username": "fm", "first_name": "Fiona", "surname": "Manager",
        "display_name": "Fiona Manager", "email": f"fm@{tenant.slug}.example",
    }  # fmt: skip
    outcome = await people.add(engine, tenant.id, raw, channel="cli", actor="t", role="admin")
    assert outcome.user_id
    async with writing(engine) as conn:
        await admins.set_password(conn, tenant.id, outcome.user_id, hash_password("x" * 12))
        found = await admins.get(conn, tenant.id, outcome.user_id)
    assert found
    return found


async def _fresh(engine, admin: admins.Admin) -> admins.Admin:
    async with engine.connect() as conn:
        found = await admins.get(conn, admin.tenant_id, admin.user_id)
    assert found
    return found


async def test_failures_after_the_lock_do_not_end_it(engine, tenant):
    admin = await _admin(engine, tenant)
    for _ in range(admins.LOCK_AFTER):
        async with writing(engine) as conn:
            await admins.failed(conn, await _fresh(engine, admin))
    locked = await _fresh(engine, admin)
    assert locked.locked_until is not None
    for _ in range(admins.LOCK_AFTER + 2):  # a guesser carries on
        async with writing(engine) as conn:
            await admins.failed(conn, await _fresh(engine, admin))
    assert (await _fresh(engine, admin)).locked_until == locked.locked_until


async def test_concurrent_failures_all_count(engine, tenant):
    admin = await _admin(engine, tenant)
    stale = await _fresh(engine, admin)  # every request read the row before any wrote it

    async def fail() -> None:
        async with writing(engine) as conn:
            await admins.failed(conn, stale)

    await asyncio.gather(*(fail() for _ in range(admins.LOCK_AFTER - 1)))
    assert (await _fresh(engine, admin)).failed_logins == admins.LOCK_AFTER - 1


async def test_a_code_time_step_is_taken_once(engine, tenant):
    admin = await _admin(engine, tenant)
    async with writing(engine) as conn:
        assert await admins.used_totp_step(conn, admin, 1000)
        assert not await admins.used_totp_step(conn, admin, 1000)  # the same code again
        assert not await admins.used_totp_step(conn, admin, 999)  # an older one
        assert await admins.used_totp_step(conn, admin, 1001)


async def test_other_sessions_end_and_this_one_stays(engine, tenant):
    admin = await _admin(engine, tenant)
    async with writing(engine) as conn:
        mine, my_token = await sessions.create(
            conn, tenant.id, admin.user_id, "console", timedelta(hours=1)
        )
        _, stolen = await sessions.create(
            conn, tenant.id, admin.user_id, "console", timedelta(hours=1)
        )
        await sessions.revoke_others(conn, mine)
        assert await sessions.find(conn, my_token, "console") is not None
        assert await sessions.find(conn, stolen, "console") is None


async def test_five_failures_in_a_row_lock_for_fifteen_minutes(engine, tenant, monkeypatch):
    """The README's numbers, written out: the fifth wrong try locks the account 15 minutes."""
    admin = await _admin(engine, tenant)
    start = datetime.now(UTC)
    monkeypatch.setattr(admins, "now", lambda: start)
    for _ in range(4):
        async with writing(engine) as conn:
            await admins.failed(conn, await _fresh(engine, admin))
    assert (await _fresh(engine, admin)).locked_until is None
    async with writing(engine) as conn:
        await admins.failed(conn, await _fresh(engine, admin))
    locked = await _fresh(engine, admin)
    assert locked.locked_until is not None
    assert locked.locked_until.astimezone(UTC) == start + timedelta(minutes=15)
