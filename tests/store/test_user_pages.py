"""What a user's page reads and the sign-outs it starts, on both databases; never across
organizations."""

from datetime import timedelta
from uuid import uuid4

from roster.domain.fields import FIELDS
from roster.jobs import people
from roster.store import sessions, tenants, user_pages
from roster.store.db import writing
from tests.factories import person
from tests.sessions import session_open, sign_in

ONE_HOUR = timedelta(hours=1)
BY = {"channel": "console", "actor": "fm@example.com"}


async def add(engine, tenant, n: int):
    row = person(n)
    outcome = await people.add(engine, tenant.id, {f.name: row[f.column] for f in FIELDS}, **BY)
    assert outcome.user_id
    return outcome.user_id


async def other_tenant(engine):
    async with writing(engine) as conn:
        return await tenants.create(conn, f"t-{uuid4().hex[:10]}", "Other")


async def test_a_user_and_their_trail_newest_first(engine, tenant):
    user_id = await add(engine, tenant, 1)
    await people.change(engine, tenant.id, user_id, {"department": "Facilities"}, **BY)
    async with engine.connect() as conn:
        user = await user_pages.user(conn, tenant.id, user_id)
        trail = await user_pages.trail(conn, tenant.id, user_id)
        elsewhere = await user_pages.user(conn, (await other_tenant(engine)).id, user_id)
    assert user is not None and user["department"] == "Facilities"
    assert user["managed_by"] == "console" and user["created_at"] <= user["updated_at"]
    assert [e["action"] for e in trail] == ["updated", "added"]
    assert trail[0]["before"] == {"department": "Support"}
    assert trail[0]["after"] == {"department": "Facilities"}
    assert trail[0]["actor"] == "fm@example.com" and trail[0]["channel"] == "console"
    assert elsewhere is None


async def test_a_removed_user_has_no_page(engine, tenant):
    user_id = await add(engine, tenant, 1)
    await people.remove(engine, tenant.id, user_id, **BY)
    async with engine.connect() as conn:
        assert await user_pages.user(conn, tenant.id, user_id) is None


async def test_signing_one_user_out(engine, tenant):
    first, second = await add(engine, tenant, 1), await add(engine, tenant, 2)
    one, two = await sign_in(engine, tenant, first), await sign_in(engine, tenant, first)
    kept = await sign_in(engine, tenant, second)
    async with writing(engine) as conn:
        assert await user_pages.sign_out(conn, tenant.id, first, "fm@example.com") == 2
    assert not await session_open(engine, tenant, one)
    assert not await session_open(engine, tenant, two)
    assert await session_open(engine, tenant, kept)
    async with engine.connect() as conn:
        assert (await user_pages.trail(conn, tenant.id, first))[0]["action"] == "signed_out"
        assert await sessions.active(conn, tenant.id, first) == []


async def test_signing_everyone_out_ends_app_sessions_of_this_organization_only(engine, tenant):
    other = await other_tenant(engine)
    user_id, stranger = await add(engine, tenant, 1), await add(engine, other, 1)
    app = [await sign_in(engine, tenant, user_id) for _ in range(3)]
    theirs = await sign_in(engine, other, stranger)
    async with writing(engine) as conn:
        console, _ = await sessions.create(conn, tenant.id, user_id, "console", ONE_HOUR)
        assert await user_pages.sign_out_everyone(conn, tenant.id, "fm@example.com") == 3
        assert await user_pages.sign_out_everyone(conn, tenant.id, "fm@example.com") == 0
    assert not any([await session_open(engine, tenant, s) for s in app])
    assert await session_open(engine, tenant, console.id)  # admins stay in the console
    assert await session_open(engine, other, theirs)
