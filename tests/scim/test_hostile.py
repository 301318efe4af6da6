"""Requests no identity provider should send: each gets a SCIM error, never a 500, and
nothing of it is stored."""

import asyncio
import collections
import logging
import sqlite3

import httpx
import pytest
import sqlalchemy as sa

from roster.store.db import Unavailable, create_engine, dispose
from roster.web.app import create_app
from tests.conftest import free_port
from tests.scim.payloads import ENTERPRISE, PATCH, entra_user

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


async def assert_error(response, status, scim_type=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    if scim_type:
        assert body["scimType"] == scim_type


@pytest.mark.parametrize(
    "raw",
    [
        b'{"userName": "x", "nested": NaN}',
        b'{"userName": "x", "n": Infinity}',
        b'{"userName": "\\ud800"}',
        b"[" * 100000 + b"]" * 100000,
        b"not json",
        b'{"userName": "x", "n": 1e999}',  # beyond a double: it would be stored as infinity
        '{"userName": "Jos\u00e9"}'.encode("utf-16"),  # JSON between systems is UTF-8
        b'{"userName": "\xff"}',
    ],
)
async def test_bodies_that_are_not_strict_json(scim, raw):
    response = await scim.post(
        "/Users", content=raw, headers={"Content-Type": "application/scim+json"}
    )
    await assert_error(response, 400, "invalidSyntax")
    assert (await scim.get("/Users")).json()["totalResults"] == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {ENTERPRISE: "xmanager"},
        {ENTERPRISE: {"employeeNumber": 12}},
        {"externalId": "x" * 256},
        {"externalId": "a\x00b"},
        {"externalId": 7},
    ],
)
async def test_identifier_attributes_are_checked(scim, overrides):
    response = await scim.post("/Users", json=entra_user(**overrides))
    if overrides.get(ENTERPRISE) == "xmanager":
        assert response.status_code == 201  # a malformed extension is ignored like any unknown
        return
    await assert_error(response, 400, "invalidValue")


async def test_an_over_long_employee_number_is_left_out(scim):
    """An optional attribute: the person is written without it."""
    body = entra_user(**{ENTERPRISE: {"department": "Support", "employeeNumber": "x" * 300}})
    response = await scim.post("/Users", json=body)
    assert response.status_code == 201, response.text
    assert response.json()[ENTERPRISE] == {"department": "Support"}


@pytest.mark.parametrize(
    "params",
    [
        {"startIndex": "99999999999999999999"},
        {"filter": 'title sw "' + "x" * 60000 + '"'},
        {"filter": 'displayName co "\x00"'},
        {"filter": "id eq"},
        {"count": "many"},
    ],
)
async def test_list_parameters_at_the_edges(scim, params):
    await scim.post("/Users", json=entra_user())
    response = await scim.get("/Users", params=params)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["Resources"] == []


async def test_odd_patches_are_refused_or_applied_never_500(scim):
    user = (await scim.post("/Users", json=entra_user())).json()
    odd = [  # (operations, the answer)
        ([{"op": "add", "value": {ENTERPRISE: {"dept ment": "x"}}}], 400),
        (
            [
                {"op": "add", "path": "emails", "value": "str"},
                {"op": "remove", "path": "emails", "value": [{"value": "a"}]},
            ],
            200,  # a stray non-object is ignored; the work address stays
        ),
        ([{"op": "replace", "path": 'emails[type eq "work"]', "value": "x@contoso.com"}], 400),
    ]
    for operations, status in odd:
        response = await scim.patch(
            f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": operations}
        )
        assert response.status_code == status, (operations, response.text)
    primary = await scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {
                    "op": "replace",
                    "path": "emails[primary eq true].value",
                    "value": "new@contoso.com",
                }
            ],
        },
    )
    assert primary.status_code == 200 and primary.json()["emails"][0]["value"] == "new@contoso.com"


async def test_group_if_match_holds_under_concurrency(scim):
    users = [(await scim.post("/Users", json=entra_user(n))).json()["id"] for n in range(4)]
    group = (await scim.post("/Groups", json={"schemas": [GROUP], "displayName": "G"})).json()

    async def add(user_id):
        return await scim.patch(
            f"/Groups/{group['id']}",
            json={
                "schemas": [PATCH],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
            },
            headers={"If-Match": 'W/"1"'},
        )

    statuses = sorted(r.status_code for r in await asyncio.gather(*(add(u) for u in users)))
    assert statuses == [200, 412, 412, 412]


async def test_a_returning_user_does_not_regain_old_groups(scim):
    user = (await scim.post("/Users", json=entra_user())).json()
    group = (
        await scim.post(
            "/Groups",
            json={"schemas": [GROUP], "displayName": "G", "members": [{"value": user["id"]}]},
        )
    ).json()
    await scim.delete(f"/Users/{user['id']}")
    again = (await scim.post("/Users", json=entra_user())).json()
    assert again["id"] == user["id"]
    assert (await scim.get(f"/Groups/{group['id']}")).json()["members"] == []


async def test_group_names_are_checked(scim):
    for name in ("", "x" * 257, "a\x00b"):
        response = await scim.post("/Groups", json={"schemas": [GROUP], "displayName": name})
        await assert_error(response, 400, "invalidValue")


async def test_every_answer_under_the_base_url_is_scim(scim):
    """Unknown paths and methods, and a failure nobody foresaw, answer with SCIM error bodies
    (and the headers every API response has); resource URLs name the address the client used."""
    for method, path, status in (
        ("GET", "/Nothing", 404),
        ("GET", "", 404),
        ("DELETE", "/Users", 405),
        ("PUT", "/ServiceProviderConfig", 405),
    ):
        answer = await scim.request(method, path)
        assert answer.status_code == status, (method, path)
        assert answer.headers["content-type"] == "application/scim+json"
        assert answer.headers["x-content-type-options"] == "nosniff"
        body = answer.json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert body["status"] == str(status)
    assert "POST" in (await scim.delete("/Users")).headers["allow"]
    created = await scim.post("/Users", json=entra_user())
    assert created.headers["location"].startswith("http://roster/scim/v2/Users/")
    config = (await scim.get("/ServiceProviderConfig")).json()
    assert config["meta"]["location"] == "http://roster/scim/v2/ServiceProviderConfig"


async def test_an_unforeseen_failure_is_a_scim_500(scim, monkeypatch, caplog):
    from roster.web.scim import users as scim_users

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(scim_users, "_sought_username", broken)
    answer = await scim.get("/Users", params={"filter": 'userName eq "x"'})
    assert answer.status_code == 500
    assert answer.json()["detail"] == "an unexpected error occurred"
    assert answer.headers["content-type"] == "application/scim+json"
    assert "a bug" in caplog.text


async def test_a_write_lock_held_too_long_elsewhere_is_503_retry_later(scim, engine, monkeypatch):
    """SQLite's one write lock held by another process (a long import from the command line)
    beyond the busy timeout: the identity provider is told to come back, nothing is stored."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    from roster.store import db

    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)
    other = sqlite3.connect(engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        answer = await scim.post("/Users", json=entra_user(9001))
    finally:
        other.close()
    await assert_error(answer, 503)
    assert answer.headers["retry-after"] == "10"
    wanted = {"filter": 'userName eq "Test_User_9001@contoso.com"'}
    assert (await scim.get("/Users", params=wanted)).json()["totalResults"] == 0
    assert (await scim.post("/Users", json=entra_user(9001))).status_code == 201  # lock gone


async def test_an_unreachable_database_is_503_retry_later():
    engine = create_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/roster")
    transport = httpx.ASGITransport(app=create_app(engine))
    well_formed = f"scim_{'0' * 32}_{'x' * 43}"  # checked against the database, were it there
    headers = {"Authorization": f"Bearer {well_formed}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://roster/scim/v2") as client:
        answer = await client.get("/Users", headers=headers)
    await dispose(engine)
    await assert_error(answer, 503)
    assert answer.headers["retry-after"] == "10"


async def test_connections_terminated_during_writes_are_503_and_the_server_recovers(
    scim, engine, caplog
):
    """PostgreSQL ends every backend of Roster's (a failover, an operator) while SCIM writes
    run: each write either happens or is told to come back (503), none fails with a 500, and
    the connections that died are replaced."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's backends")
    answers: collections.Counter[int] = collections.Counter()
    storm = asyncio.Event()

    async def writer(first: int) -> None:
        n = first
        while not storm.is_set():
            n += 1
            created = await scim.post("/Users", json=entra_user(n))
            answers[created.status_code] += 1
            if created.status_code != 201:
                continue
            user = f"/Users/{created.json()['id']}"
            off = {"op": "replace", "path": "active", "value": False}
            patched = await scim.patch(user, json={"schemas": [PATCH], "Operations": [off]})
            answers[patched.status_code] += 1
            answers[(await scim.delete(user)).status_code] += 1

    writers = [asyncio.create_task(writer(k * 100_000)) for k in range(8)]
    everyone_else = sa.text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        for _ in range(8):
            await asyncio.sleep(0.1)
            for _attempt in range(2):  # the pool's connection may be one the last round ended
                try:
                    async with engine.connect() as conn:
                        await conn.execute(everyone_else)
                    break
                except Unavailable:
                    continue
    finally:  # the writers end before the client closes, whatever happened
        storm.set()
        await asyncio.gather(*writers)
        await dispose(engine)  # the pools' connections the storm ended: later tests get new ones
    # 429: eight writers in one process may outrun the token's rate limit on a fast machine,
    # which also tells them to come back.
    assert set(answers) <= {200, 201, 204, 409, 429, 503}, answers
    assert answers[503] and answers[201]  # the storm met writes, and writes went through
    # Each connection that died fails at most its next use (a 503), and is replaced.
    # A 429 (the storm drained the token's rate limit) is waited out as its Retry-After says.
    for n in range(2 * engine.pool.size()):
        tries: list[int] = []
        while (
            not tries
            or (tries[-1] == 429 and tries.count(429) < 6)
            or (tries[-1] == 503 and tries.count(503) < 3)
        ):
            answer = await scim.post("/Users", json=entra_user(900_000 + n))
            tries.append(answer.status_code)
            if answer.status_code == 429:
                await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
            elif answer.status_code == 503:
                await asyncio.sleep(0.05)
        assert tries[-1] == 201 and tries.count(503) <= 2, tries
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
