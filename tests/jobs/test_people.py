"""One person at a time (jobs/people): the organization keeps an admin who can sign in, and a
role change moves the console credentials with it, in one transaction."""

import asyncio
from uuid import uuid4

import pytest

from roster.domain.fields import FIELDS
from roster.domain.passwords import hash_password
from roster.jobs import people
from roster.store import admins, tenants, user_pages
from roster.store.db import writing
from tests.factories import person

HASH = hash_password("a one-time password")
BY = {"channel": "console", "actor": "fm@example.com"}


def raw(n: int) -> dict[str, str]:
    """A form's values for person n (field names, not CSV columns)."""
    row = person(n)
    return {f.name: row[f.column] for f in FIELDS}


async def admin(engine, tenant, n: int):
    outcome = await people.add(engine, tenant.id, raw(n), **BY)
    assert outcome.ok and outcome.user_id
    assert (await people.set_role(engine, tenant.id, outcome.user_id, HASH, **BY)).ok
    return outcome.user_id


async def credentials(engine, tenant, user_id):
    async with engine.connect() as conn:
        return await admins.get(conn, tenant.id, user_id)


async def test_making_an_admin_sets_role_and_credentials_together(engine, tenant):
    user_id = await admin(engine, tenant, 1)
    found = await credentials(engine, tenant, user_id)
    assert found is not None and found.is_admin and found.password_hash == HASH


async def test_the_last_admin_keeps_the_rights_and_stays(engine, tenant):
    first = await admin(engine, tenant, 1)
    for write in (
        people.set_role(engine, tenant.id, first, None, **BY),
        people.change(engine, tenant.id, first, {"active": False}, **BY),
        people.remove(engine, tenant.id, first, **BY),
    ):
        outcome = await write
        assert [i.code for i in outcome.issues] == ["last_admin"]
    assert (await credentials(engine, tenant, first)) is not None
    # With a second admin, the first may go; then the second is the last.
    second = await admin(engine, tenant, 2)
    assert (await people.set_role(engine, tenant.id, first, None, **BY)).ok
    assert await credentials(engine, tenant, first) is None  # the credentials went with the role
    assert not (await people.remove(engine, tenant.id, second, **BY)).ok
    # An ordinary change of the last admin is no problem.
    assert (await people.change(engine, tenant.id, second, {"title": "Boss"}, **BY)).ok


async def test_an_inactive_admin_does_not_count(engine, tenant):
    first = await admin(engine, tenant, 1)
    second = await admin(engine, tenant, 2)
    assert (await people.change(engine, tenant.id, second, {"active": False}, **BY)).ok
    assert not (await people.change(engine, tenant.id, first, {"active": False}, **BY)).ok


async def test_other_organizations_admins_do_not_count(engine, tenant):
    async with writing(engine) as conn:
        other = await tenants.create(conn, f"t-{uuid4().hex[:10]}", "Other")
    await admin(engine, other, 1)
    first = await admin(engine, tenant, 1)
    assert not (await people.set_role(engine, tenant.id, first, None, **BY)).ok


async def test_a_removed_user_cannot_be_changed(engine, tenant):
    outcome = await people.add(engine, tenant.id, raw(1), **BY)
    assert outcome.user_id
    assert (await people.remove(engine, tenant.id, outcome.user_id, **BY)).ok
    with pytest.raises(people.NoSuchUser):
        await people.set_role(engine, tenant.id, outcome.user_id, HASH, **BY)


async def stored(engine, tenant, user_id):
    async with engine.connect() as conn:
        return await user_pages.user(conn, tenant.id, user_id)


async def test_a_change_made_from_an_older_version_is_refused(engine, tenant):
    outcome = await people.add(engine, tenant.id, raw(1), **BY)
    assert outcome.user_id
    user_id = outcome.user_id
    opened = (await stored(engine, tenant, user_id))["version"]  # the form is opened
    # Meanwhile an import changes the title.
    assert (await people.change(engine, tenant.id, user_id, {"title": "Director"}, channel="csv",
                                actor="import")).ok  # fmt: skip
    form = {"title": "Manager", "department": "Facilities"}
    refused = await people.change(engine, tenant.id, user_id, form, version=opened, **BY)
    assert [i.code for i in refused.issues] == ["changed"]
    now = await stored(engine, tenant, user_id)
    assert now["title"] == "Director" and now["department"] != "Facilities"
    # What changed since the form was opened, for the refusal to name.
    async with engine.connect() as conn:
        since = await user_pages.changes_since(conn, tenant.id, user_id, opened)
    assert [(e["channel"], e["after"]) for e in since] == [("csv", {"title": "Director"})]
    # Made from the stored version, the same change is saved.
    saved = await people.change(engine, tenant.id, user_id, form, version=now["version"], **BY)
    assert saved.ok
    assert (await stored(engine, tenant, user_id))["title"] == "Manager"


async def test_two_saves_of_one_version_at_once_store_one(engine, tenant):
    outcome = await people.add(engine, tenant.id, raw(1), **BY)
    assert outcome.user_id
    opened = (await stored(engine, tenant, outcome.user_id))["version"]
    outcomes = await asyncio.gather(
        *(
            people.change(engine, tenant.id, outcome.user_id, {"title": t}, version=opened, **BY)
            for t in ("First", "Second")
        )
    )
    assert sorted(o.ok for o in outcomes) == [False, True]
    winner = "First" if outcomes[0].ok else "Second"
    now = await stored(engine, tenant, outcome.user_id)
    assert now["title"] == winner and now["version"] == opened + 1


async def test_making_an_admin_twice_keeps_the_password_handed_over(engine, tenant):
    user_id = await admin(engine, tenant, 1)
    again = await people.set_role(engine, tenant.id, user_id, hash_password("another one!"), **BY)
    assert [i.code for i in again.issues] == ["changed"]
    assert (await credentials(engine, tenant, user_id)).password_hash == HASH
