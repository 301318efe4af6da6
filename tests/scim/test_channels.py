"""SCIM and files on one directory: ownership, sessions and versions across channels."""

from uuid import UUID

from roster.domain.mode import Mode
from roster.jobs import imports as jobs
from roster.store import directory_reads
from tests.factories import csv_bytes, people
from tests.scim.payloads import PATCH, entra_user
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
