"""The provisioning log: each SCIM request of an organization is one row saying what Roster
did, written off the request's path within a second, kept for the retention period, shown by
`roster scim log` and the console; never a token, a password or a body."""

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

from roster.scheduler import purge_provisioning_log
from roster.store import provisioning_log, scim_tokens, tenants
from roster.store.db import writing
from roster.store.prepared import DirectWrites
from roster.store.schema import provisioning_log as log_table
from roster.store.schema import tenants as tenants_table
from tests.scim.payloads import PATCH, entra_user
from tests.scim.test_token_use import console_client
from tests.scim.test_tokens import roster

UTC_ZONE = ZoneInfo("UTC")
PASSWORD = "okta-placeholder-Pa55word!"


async def entries(engine, tenant_id, **wanted) -> list[provisioning_log.Entry]:
    async with engine.connect() as conn:
        found, _ = await provisioning_log.search(
            conn, tenant_id, provisioning_log.Filter(**wanted), UTC_ZONE
        )
    return found


def patch(*operations):
    return {"schemas": [PATCH], "Operations": list(operations)}


async def test_each_request_is_one_row_in_words(scim, engine):
    name = "Test_User_1@contoso.com"
    looked = await scim.get("/Users", params={"filter": f'userName eq "{name}"'})
    assert looked.status_code == 200
    created = await scim.post("/Users", json=entra_user(1, password=PASSWORD))
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    updated = await scim.patch(
        f"/Users/{user_id}",
        json=patch(
            {"op": "replace", "path": "title", "value": "Director"},
            {"op": "replace", "path": f"{entra_user()['schemas'][1]}:department", "value": "HR"},
        ),
    )
    assert updated.status_code == 200, updated.text
    deactivated = await scim.patch(
        f"/Users/{user_id}", json=patch({"op": "replace", "path": "active", "value": False})
    )
    assert deactivated.status_code == 200, deactivated.text
    refused = await scim.post("/Users", json={"schemas": entra_user()["schemas"]})
    assert refused.status_code == 400
    found = await scim.get(f"/Users/{user_id}")
    assert found.status_code == 200
    await scim.app.state.provisioning_log.close()

    rows = list(reversed(await entries(engine, scim.tenant.id)))
    said = [(r.method, r.status, r.user_name, r.detail) for r in rows]
    assert said == [
        ("GET", 200, name, "found none"),
        ("POST", 201, name, "created"),
        ("PATCH", 200, name, "updated title, department"),
        ("PATCH", 200, name, "deactivated"),
        ("POST", 400, None, f"refused: {refused.json()['detail']}"),
        ("GET", 200, name, "found"),
    ], said
    assert all(r.token == "entra-id" for r in rows)
    assert all(r.duration_ms > 0 for r in rows)
    assert [r.resource_id for r in rows[1:4]] == [user_id] * 3
    assert rows[0].path.startswith("/scim/v2/Users?filter=")
    assert rows[2].path == f"/scim/v2/Users/{user_id}"

    # Neither the bearer token nor the password is in any column of any row.
    bearer = scim.headers["authorization"].removeprefix("Bearer ")
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(log_table))).all()
    text = json.dumps([[str(value) for value in row] for row in stored])
    assert bearer not in text and PASSWORD not in text
    assert "Pa55word" not in text


async def test_rows_are_written_within_a_second_and_at_shutdown(scim, engine):
    assert (await scim.get("/Users", params={"count": 1})).status_code == 200
    started = time.monotonic()
    while not await entries(engine, scim.tenant.id):
        assert time.monotonic() - started < 2.0, "not written within a second"
        await asyncio.sleep(0.1)
    assert (await scim.get("/Groups")).status_code == 200
    await scim.app.state.provisioning_log.close()  # what the lifespan's end runs
    assert len(await entries(engine, scim.tenant.id)) == 2


async def test_groups_say_their_member_changes(scim, engine):
    users = [(await scim.post("/Users", json=entra_user(n))).json()["id"] for n in (1, 2)]
    group = await scim.post("/Groups", json={"displayName": "Facilities", "members": []})
    group_id = group.json()["id"]
    members = [{"value": user_id} for user_id in users]
    added = await scim.patch(
        f"/Groups/{group_id}", json=patch({"op": "add", "path": "members", "value": members})
    )
    assert added.status_code == 200, added.text
    assert (await scim.delete(f"/Groups/{group_id}")).status_code == 204
    await scim.app.state.provisioning_log.close()
    rows = await entries(engine, scim.tenant.id)
    assert [(r.user_name, r.detail) for r in rows[:3]] == [
        ("Facilities", "deleted"),
        ("Facilities", "added 2 members"),
        ("Facilities", "created with 0 members"),
    ]


async def test_organizations_see_only_their_own_log(scim, engine):
    async with writing(engine) as conn:
        other = await tenants.create(conn, f"o-{uuid.uuid4().hex[:10]}", "Other org")
        _, secret = await scim_tokens.create(conn, other.id, "okta")
    transport = httpx.ASGITransport(app=scim.app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://roster/scim/v2",
        headers={"Authorization": f"Bearer {secret}"},
    ) as client:
        assert (await client.post("/Users", json=entra_user(5))).status_code == 201
    assert (await scim.get("/Users")).status_code == 200
    bad = await scim.get("/Users", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401  # no organization: a log line, no row
    await scim.app.state.provisioning_log.close()
    mine = await entries(engine, scim.tenant.id)
    theirs = await entries(engine, other.id)
    assert [(r.token, r.method) for r in mine] == [("entra-id", "GET")]
    assert [(r.token, r.method) for r in theirs] == [("okta", "POST")]


def log_row(tenant_id, at: datetime, **values):
    return {
        "tenant_id": tenant_id, "at": at, "token": "entra-id",
        "method": "GET", "path": "/scim/v2/Users", "status": 200, "resource_id": None,
        "user_name": None, "detail": "found none", "warnings": "", "duration_ms": 1.5,
        **values,
    }  # fmt: skip


async def test_retention_deletes_old_rows(engine, tenant):
    now = datetime.now(UTC)
    async with writing(engine) as conn:
        await conn.execute(
            sa.update(tenants_table).where(tenants_table.c.tenant_id == tenant.id),
            {"retention_days": 7},
        )
        await provisioning_log.record(
            conn,
            [
                log_row(tenant.id, now - timedelta(days=8), detail="old"),
                log_row(tenant.id, now - timedelta(days=6), detail="kept"),
            ],
        )
    assert await purge_provisioning_log(engine) >= 1
    assert [r.detail for r in await entries(engine, tenant.id)] == ["kept"]


async def test_filters_by_status_user_and_day(engine, tenant):
    day = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    async with writing(engine) as conn:
        await provisioning_log.record(
            conn,
            [
                log_row(tenant.id, day, status=201, user_name="Ann@corp.local", detail="a"),
                log_row(tenant.id, day, status=409, user_name="Bob@corp.local", detail="b"),
                log_row(tenant.id, day, status=400, user_name="ann.b", detail="c"),
                log_row(tenant.id, day + timedelta(days=1), status=503, detail="d"),
            ],
        )

    async def details(**wanted):
        return sorted(r.detail for r in await entries(engine, tenant.id, **wanted))

    assert await details(status="4xx") == ["b", "c"]
    assert await details(status="409") == ["b"]
    assert await details(status="5XX") == ["d"]
    assert await details(user="ANN") == ["a", "c"]
    assert await details(user="%") == []  # a wildcard is plain text
    assert await details(since=day.date(), until=day.date()) == ["a", "b", "c"]
    assert await details(since=(day + timedelta(days=1)).date()) == ["d"]
    assert provisioning_log.status_problem("4x") is not None
    assert provisioning_log.status_problem("200") is None


async def test_the_cli_prints_the_log(scim, engine, cli_env):
    assert (await scim.post("/Users", json=entra_user(1))).status_code == 201
    assert (await scim.post("/Users", json={"userName": 12})).status_code == 400
    assert (await scim.get("/Users", params={"count": 1})).status_code == 200
    await scim.app.state.provisioning_log.close()
    slug = scim.tenant.slug

    async def cli(*args):
        return await asyncio.to_thread(roster, "scim", "log", "--tenant", slug, *args)

    printed = json.loads((await cli("--json")).stdout)
    assert [(e["method"], e["status"]) for e in printed] == [
        ("GET", 200), ("POST", 400), ("POST", 201),
    ]  # fmt: skip
    keys = {"at", "token", "method", "path", "status", "user_name", "detail"}
    assert all(keys <= set(e) for e in printed)
    assert printed[2]["user_name"] == "Test_User_1@contoso.com"
    assert printed[2]["token"] == "entra-id" and printed[2]["detail"] == "created"
    assert [e["status"] for e in json.loads((await cli("--json", "--status", "4xx")).stdout)] == [
        400
    ]
    assert [e["status"] for e in json.loads((await cli("--json", "--status", "201")).stdout)] == [
        201
    ]
    assert [e["method"] for e in json.loads((await cli("--json", "--last", "1")).stdout)] == ["GET"]
    wrong = await cli("--status", "4x")
    assert wrong.exit_code == 2 and "is not a status" in wrong.output
    table = await cli()
    assert table.exit_code == 0 and "POST" in table.stdout


async def test_the_console_shows_the_log_and_one_request(scim, engine):
    created = await scim.post("/Users", json=entra_user(1))
    assert created.status_code == 201
    hostile = {"userName": "<script>alert(1)</script>", "emails": 3}
    assert (await scim.post("/Users", json=hostile)).status_code == 400
    await scim.app.state.provisioning_log.close()

    async with console_client(engine, scim) as console:

        async def shown(path, status=200):
            response = await console.get(path)
            assert response.status_code == status, response.text
            return response.text

        assert 'href="/integrations/scim-log"' in await shown("/integrations")
        listed = await shown("/integrations/scim-log")
        assert "Test_User_1@contoso.com" in listed and "created" in listed
        assert "<script>alert(1)</script>" not in listed
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listed
        refused = await shown("/integrations/scim-log?status=4xx")
        assert "Test_User_1@contoso.com" not in refused and "&lt;script&gt;" in refused
        by_user = await shown("/integrations/scim-log?user=test_user_1")
        assert "Test_User_1@contoso.com" in by_user and "&lt;script&gt;" not in by_user
        wrong = await shown("/integrations/scim-log?status=4x&from=x", 400)
        assert "is not a status" in wrong and "is not a date" in wrong

        (entry,) = await entries(engine, scim.tenant.id, status="201")
        details = await shown(f"/integrations/scim-log/{entry.id}")
        assert "Test_User_1@contoso.com" in details and "entra-id" in details
        assert entry.resource_id is not None and entry.resource_id in details
        async with writing(engine) as conn:
            other = await tenants.create(conn, f"other-{uuid.uuid4().hex[:8]}", "Other")
            await provisioning_log.record(conn, [log_row(other.id, datetime.now(UTC))])
        (others,) = await entries(engine, other.id)
        await shown(f"/integrations/scim-log/{others.id}", 404)  # another organization's
        await shown(f"/integrations/scim-log/{others.id + 1}", 404)  # nobody's
        await shown("/integrations/scim-log/x", 422)


async def test_an_entry_number_is_never_given_twice(engine, tenant):
    """A link to an entry never opens another one, even after the newest entries went."""
    async with writing(engine) as conn:
        await provisioning_log.record(conn, [log_row(tenant.id, datetime.now(UTC), detail="gone")])
    (gone,) = await entries(engine, tenant.id)
    async with writing(engine) as conn:
        await conn.execute(log_table.delete().where(log_table.c.tenant_id == tenant.id))
        await provisioning_log.record(conn, [log_row(tenant.id, datetime.now(UTC), detail="new")])
    (new,) = await entries(engine, tenant.id)
    assert new.id > gone.id


async def test_a_batch_is_written_whole_and_in_order(engine, tenant):
    """The writer's batches (several statements of many rows on SQLite, one executemany on
    PostgreSQL) keep every row, every value and the order rows were given in."""
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    rows = [
        log_row(
            tenant.id, start + timedelta(seconds=n), detail=f"row {n}", status=200 + n % 3,
            user_name=None if n % 2 else f"u{n}@corp.local", warnings="a\nb" if n == 7 else "",
        )
        for n in range(123)  # two whole groups of statements' rows and a part of one
    ]  # fmt: skip
    writes = DirectWrites(engine)
    try:
        async with writes.transaction() as conn:
            await provisioning_log.record(conn, rows)
    finally:
        await writes.close()
    async with engine.connect() as conn:
        mine = sa.select(log_table).where(log_table.c.tenant_id == tenant.id)
        found = (await conn.execute(mine.order_by(log_table.c.id))).all()
    assert [row.detail for row in found] == [f"row {n}" for n in range(123)]
    assert [row.at for row in found] == [row["at"] for row in rows]
    assert [row.user_name for row in found] == [row["user_name"] for row in rows]
    assert [row.status for row in found] == [row["status"] for row in rows]
    assert found[7].warnings == "a\nb"
