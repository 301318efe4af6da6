"""One person at a time (jobs/people): the organization keeps an admin who can sign in, and a
role change moves the console credentials with it, in one transaction."""

from uuid import uuid4

import pytest

from roster.domain.fields import FIELDS
from roster.domain.passwords import hash_password
from roster.jobs import people
from roster.store import admins, tenants
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
