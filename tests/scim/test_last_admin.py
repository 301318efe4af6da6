"""An identity provider that deactivates or deletes an organization's last admin is obeyed (a
leaver loses access), and the audit log warns that the organization has no admin left and
how to make one."""

import asyncio
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from roster.domain.passwords import hash_password
from roster.jobs import people
from roster.store import audit
from tests.scim.payloads import PATCH, entra_user
from tests.sessions import session_open, sign_in

HASH = hash_password("a one-time password")
BY = {"channel": "cli", "actor": "operator"}


async def an_admin(scim, engine, n: int) -> str:
    name = f"admin{n}@contoso.com"
    body = entra_user(n, userName=name, emails=[{"type": "work", "value": name}])
    user = (await scim.post("/Users", json=body)).json()
    outcome = await people.set_role(engine, scim.tenant.id, UUID(user["id"]), HASH, **BY)
    assert outcome.ok, outcome.issues
    return user["id"]


async def warnings(engine, tenant):
    async with engine.connect() as conn:
        events, _ = await audit.search(conn, tenant.id, audit.Filter(), ZoneInfo("UTC"))
    return [e for e in events if e.action == "no_admin_left"]


async def deactivate(scim, user_id: str, how: str):
    if how == "patch":
        operation = {"op": "Replace", "path": "active", "value": "False"}
        return await scim.patch(
            f"/Users/{user_id}", json={"schemas": [PATCH], "Operations": [operation]}
        )
    if how == "put":
        body = (await scim.get(f"/Users/{user_id}")).json()
        return await scim.put(f"/Users/{user_id}", json=body | {"active": False})
    return await scim.delete(f"/Users/{user_id}")


@pytest.mark.parametrize("how", ["patch", "put", "delete"])
async def test_the_last_admin_leaves_and_the_log_says_how_to_make_one(scim, engine, how):
    admin = await an_admin(scim, engine, 1)
    session = await sign_in(engine, scim.tenant, UUID(admin))
    response = await deactivate(scim, admin, how)
    assert response.status_code in (200, 204), response.text
    assert not await session_open(engine, scim.tenant, session)
    (warning,) = await warnings(engine, scim.tenant)
    assert (warning.channel, warning.actor, str(warning.user_id)) == (
        "scim",
        "scim token entra-id",
        admin,
    )
    ((field, _, message),) = warning.changes  # what the console's audit page lists
    assert field == "warning"
    assert "no admin left" in message
    assert f"roster admin create --tenant {scim.tenant.slug} --email" in message


async def test_no_warning_while_another_admin_remains(scim, engine):
    first = await an_admin(scim, engine, 1)
    second = await an_admin(scim, engine, 2)
    assert (await deactivate(scim, first, "patch")).status_code == 200
    assert await warnings(engine, scim.tenant) == []
    assert (await deactivate(scim, second, "delete")).status_code == 204
    assert len(await warnings(engine, scim.tenant)) == 1


async def test_an_ordinary_user_leaving_is_no_warning(scim, engine):
    await an_admin(scim, engine, 1)
    user = (await scim.post("/Users", json=entra_user(2))).json()
    assert (await deactivate(scim, user["id"], "delete")).status_code == 204
    assert await warnings(engine, scim.tenant) == []


async def test_the_last_two_admins_deactivated_at_once_leave_a_warning(scim, engine):
    first = await an_admin(scim, engine, 1)
    second = await an_admin(scim, engine, 2)
    answers = await asyncio.gather(
        deactivate(scim, first, "patch"), deactivate(scim, second, "put")
    )
    assert [a.status_code for a in answers] == [200, 200]
    assert len(await warnings(engine, scim.tenant)) >= 1  # each checks after its commit


async def test_a_deactivation_stands_when_the_warning_cannot_be_written(
    scim, engine, monkeypatch, caplog
):
    """The write is committed: the identity provider hears it succeeded (a 503 would make it
    retry a write that needs none), and the log says what could not be checked."""
    from roster.store import admins
    from roster.store.db import Unavailable

    admin = await an_admin(scim, engine, 7)

    async def busy(*args, **kwargs):
        raise Unavailable("the database is unavailable (busy)")

    monkeypatch.setattr(admins, "warn_if_none_left", busy)
    answer = await deactivate(scim, admin, "patch")
    assert answer.status_code == 200 and answer.json()["active"] is False
    assert "could not be checked" in caplog.text
