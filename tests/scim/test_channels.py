"""SCIM and files on one directory: ownership, sessions and versions across channels."""

from uuid import UUID

import sqlalchemy as sa

from roster.domain.collation import sort_key
from roster.domain.mode import Mode
from roster.jobs import imports as jobs
from roster.jobs import people as people_jobs
from roster.store import directory_reads, user_search
from roster.store.schema import users
from roster.store.user_search import Query
from tests.factories import csv_bytes, people, person
from tests.scim.payloads import ENTERPRISE, PATCH, entra_user
from tests.sessions import session_open, sign_in


async def test_csv_replace_never_removes_scim_users(scim, engine):
    user = (await scim.post("/Users", json=entra_user())).json()
    report = await jobs.run_import(
        engine,
        scim.tenant.slug,
        csv_bytes(people(3)),
        mode=Mode.REPLACE,
        channel="sftp",
        actor="drop box",
    )
    assert report.status == "applied" and report.counts["removed"] == 0
    assert (await scim.get(f"/Users/{user['id']}")).status_code == 200


async def test_disable_and_delete_end_sessions_at_once(scim, engine):
    first = (await scim.post("/Users", json=entra_user(1))).json()
    second = (await scim.post("/Users", json=entra_user(2))).json()
    kept = (await scim.post("/Users", json=entra_user(3))).json()
    sessions = {
        u["id"]: await sign_in(engine, scim.tenant, UUID(u["id"])) for u in (first, second, kept)
    }
    await scim.patch(
        f"/Users/{first['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    await scim.delete(f"/Users/{second['id']}")
    await scim.patch(
        f"/Users/{kept['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "title", "value": "Boss"}],
        },
    )
    assert not await session_open(engine, scim.tenant, sessions[first["id"]])
    assert not await session_open(engine, scim.tenant, sessions[second["id"]])
    assert await session_open(engine, scim.tenant, sessions[kept["id"]])


async def test_a_csv_change_makes_a_scim_write_with_the_old_version_fail(scim, engine):
    """If-Match guards against a concurrent import: the import bumped the version."""
    await jobs.run_import(
        engine, scim.tenant.slug, csv_bytes(people(1)), mode=Mode.ADD, channel="csv", actor="a"
    )
    async with engine.connect() as conn:
        (user,) = await directory_reads.list_users(conn, scim.tenant.id)
    fetched = await scim.get(f"/Users/{user['id']}")
    version = fetched.headers["ETag"]
    await jobs.run_import(
        engine,
        scim.tenant.slug,
        csv_bytes([people(1)[0] | {"CSV_TITLE": "Director"}]),
        mode=Mode.ADD,
        channel="csv",
        actor="a",
    )
    stale = await scim.patch(
        f"/Users/{user['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "X"}]},
        headers={"If-Match": version},
    )
    assert stale.status_code == 412
    assert (await scim.get(f"/Users/{user['id']}")).json()["title"] == "Director"


async def test_every_channel_keeps_the_alphabetical_order_in_step(scim, engine):
    """A user's place in the console's list follows their name and department whichever
    channel changes them: a CSV import, a SCIM create, PUT and PATCH, the console's form."""
    tenant = scim.tenant
    rows = [
        person(1, CSV_DISPLAYNAME="Dubois", CSV_DEPARTMENT="Einkauf"),
        person(2, CSV_DISPLAYNAME="Krüger", CSV_DEPARTMENT="Support"),
    ]
    await jobs.run_import(
        engine, tenant.slug, csv_bytes(rows), mode=Mode.ADD, channel="csv", actor="a"
    )
    changed = rows[0] | {"CSV_DISPLAYNAME": "Çelik", "CSV_DEPARTMENT": "Ärztlicher Dienst"}
    await jobs.run_import(
        engine,
        tenant.slug,
        csv_bytes([changed, rows[1]]),
        mode=Mode.REPLACE,
        channel="csv",
        actor="a",
    )
    put = (await scim.post("/Users", json=entra_user(3, displayName="Schröder"))).json()
    replaced = entra_user(3, displayName="Köhler", **{ENTERPRISE: {"department": "Öffentlichkeit"}})
    assert (await scim.put(f"/Users/{put['id']}", json=replaced)).status_code == 200
    patched = (await scim.post("/Users", json=entra_user(4, displayName="Weiß"))).json()
    operations = [
        {"op": "replace", "path": "displayName", "value": "Schäfer"},
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Logistik"},
    ]
    patch = {"schemas": [PATCH], "Operations": operations}
    assert (await scim.patch(f"/Users/{patched['id']}", json=patch)).status_code == 200
    async with engine.connect() as conn:
        second = await directory_reads.user_id_of(conn, tenant.id, "user000002")
    edit = {"display_name": "Weiß", "department": "Zentrale"}
    await people_jobs.change(engine, tenant.id, second, edit, channel="console", actor="fm")

    async def shown(sort: str, column: str) -> list[str]:
        async with engine.connect() as conn:
            rows, _ = await user_search.search(conn, tenant.id, Query(sort=sort))
        return [row[column] for row in rows]

    assert await shown("name", "display_name") == ["Çelik", "Köhler", "Schäfer", "Weiß"]
    assert await shown("department", "department") == [
        "Ärztlicher Dienst", "Logistik", "Öffentlichkeit", "Zentrale",
    ]  # fmt: skip
    async with engine.connect() as conn:
        stored = await conn.execute(
            sa.select(
                users.c.display_name, users.c.display_name_sort_key,
                users.c.department, users.c.department_sort_key,
            ).where(users.c.tenant_id == tenant.id)
        )  # fmt: skip
        for name, name_key, department, department_key in stored:
            assert (name_key, department_key) == (sort_key(name), sort_key(department)), name
