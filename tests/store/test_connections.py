"""PostgreSQL through one driver (asyncpg), and one budget of connections per process
(ROSTER_DATABASE_CONNECTIONS) that SQLAlchemy's engine, the read engine, DirectReads and
DirectWrites share: under load a process never holds more, a task beyond it waits, and one
that waited too long is told to come back (503 with Retry-After on SCIM)."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from roster.domain.mode import Mode
from roster.jobs.imports import run_import
from roster.settings import Settings, async_url
from roster.store import db, scim_tokens, tenants
from roster.store.db import Unavailable, create_engine, dispose, migrate, read_engine, writing
from roster.store.prepared import DirectReads, _Lent, prepared
from roster.store.schema import users
from roster.web.app import create_app
from tests.conftest import POSTGRES_URL
from tests.factories import csv_bytes, person
from tests.scim.payloads import entra_user

postgres_only = pytest.mark.skipif(not POSTGRES_URL, reason="ROSTER_TEST_POSTGRES_URL is not set")


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://roster@db/roster", "postgresql+asyncpg://roster@db/roster"),
        ("postgres://roster@db/roster", "postgresql+asyncpg://roster@db/roster"),
        # Roster's earlier driver: an existing configuration keeps working.
        ("postgresql+psycopg://roster@db/roster", "postgresql+asyncpg://roster@db/roster"),
        ("postgresql+asyncpg://roster@db/roster", "postgresql+asyncpg://roster@db/roster"),
        (
            "postgresql://roster@db/roster?sslmode=require",
            "postgresql+asyncpg://roster@db/roster?ssl=require",
        ),
        ("sqlite:///var/roster.db", "sqlite+aiosqlite:///var/roster.db"),
    ],
)
def test_a_database_url_is_used_through_asyncpg_or_aiosqlite(given, used):
    assert async_url(given) == used
    assert Settings(database_url=given).resolved_database_url == used


def test_the_budget_is_ten_connections_unless_set(monkeypatch):
    assert Settings().database_connections == 10
    monkeypatch.setenv("ROSTER_DATABASE_CONNECTIONS", "4")
    assert Settings().database_connections == 4


@postgres_only
async def test_a_psycopg_url_connects_through_asyncpg():
    assert POSTGRES_URL
    engine = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT 1"))).scalar_one() == 1
        assert engine.dialect.driver == "asyncpg"
    finally:
        await dispose(engine)


@pytest.fixture
def scratch() -> Iterator[str]:
    """A database of its own: every connection to it is the engine's under test."""
    if not POSTGRES_URL:
        pytest.skip("ROSTER_TEST_POSTGRES_URL is not set")
    with db.scratch_postgres(POSTGRES_URL, "roster_budget") as url:
        yield url


async def _organization(engine: sa.ext.asyncio.AsyncEngine) -> tuple[Any, str]:
    async with writing(engine) as conn:
        tenant = await tenants.create(conn, f"b-{uuid.uuid4().hex[:10]}", "Budget org")
        _, token = await scim_tokens.create(conn, tenant.id, "entra-id")
    return tenant, token


async def _client(engine: sa.ext.asyncio.AsyncEngine, token: str) -> AsyncIterator[Any]:
    app = create_app(engine, scim_rate_limit=100_000)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://roster/scim/v2",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        try:
            yield client
        finally:  # aclose() ends the generator at its yield: the log's rows written here
            await app.state.provisioning_log.close()


async def test_a_process_never_holds_more_connections_than_its_budget(scratch):
    budget = 4
    engine = create_engine(scratch, connections=budget)
    database = sa.engine.make_url(scratch).database
    admin = create_engine(POSTGRES_URL or "", connections=1)
    count = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d")
    seen: list[int] = []
    answers: list[int] = []
    try:
        await migrate(engine)
        tenant, token = await _organization(engine)
        clients = _client(engine, token)
        scim = await anext(clients)
        loading = asyncio.Event()

        async def sample() -> None:
            # Autocommit: each count its own transaction, so a fresh view of the activity.
            async with read_engine(admin).connect() as conn:
                while not loading.is_set():
                    seen.append(int((await conn.execute(count, {"d": database})).scalar_one()))
                    await asyncio.sleep(0.002)

        async def provision(first: int) -> None:
            for n in range(first, first + 6):
                created = await scim.post("/Users", json=entra_user(n))
                answers.append(created.status_code)
                wanted = {"filter": f'userName eq "{entra_user(n)["userName"]}"'}
                answers.append((await scim.get("/Users", params=wanted)).status_code)
                off = {"op": "replace", "path": "active", "value": False}
                patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
                user = f"/Users/{created.json()['id']}"
                answers.append(
                    (await scim.patch(user, json={**patch, "Operations": [off]})).status_code
                )

        async def console_reads() -> None:
            for _ in range(20):
                async with read_engine(engine).connect() as conn:
                    by_tenant = sa.select(sa.func.count()).where(users.c.tenant_id == tenant.id)
                    await conn.execute(by_tenant)
                rows = await prepared(sa.select(users.c.id).limit(1)).rows(DirectReads(engine), {})
                assert len(rows) <= 1

        async def an_import() -> None:
            rows = [person(n, CSV_EMAIL=f"i{n}@{tenant.slug}.example") for n in range(300)]
            report = await run_import(
                engine, tenant.slug, csv_bytes(rows), mode=Mode.ADD, channel="cli", actor="t"
            )
            assert report.counts["added"] == 300

        sampler = asyncio.create_task(sample())
        await asyncio.sleep(0.05)
        readers = (console_reads() for _ in range(2))
        await asyncio.gather(*(provision(k * 100) for k in range(12)), *readers, an_import())
        loading.set()
        await sampler
        await clients.aclose()
        # Leases unused a while are the pool's again.
        for _ in range(50):
            await asyncio.sleep(_Lent.IDLE_SECONDS / 10)
            if engine.pool.checkedout() == 0:
                break
        idle_after = engine.pool.checkedout()
    finally:
        await dispose(engine)
        await dispose(admin)
    assert set(answers) <= {200, 201, 204}, answers  # every request waited its turn, none failed
    assert max(seen) <= budget, seen
    assert max(seen) == budget  # the load used all of it
    assert idle_after == 0


async def test_a_task_beyond_the_budget_waits_then_is_told_to_come_back(scratch, monkeypatch):
    monkeypatch.setattr(db, "CONNECTION_WAIT_SECONDS", 0.3)
    budget = 4  # the smallest: one lease, and three for SQLAlchemy
    engine = create_engine(scratch, connections=budget)

    @contextlib.asynccontextmanager
    async def the_whole_budget(pause: float = 0.0):
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(budget):
                conn = await stack.enter_async_context(engine.connect())
                await conn.execute(sa.text("SELECT 1"))
            yield
            await conn.execute(sa.text(f"SELECT pg_sleep({pause})"))

    try:
        await migrate(engine)
        _, token = await _organization(engine)
        clients = _client(engine, token)
        scim = await anext(clients)
        lookup = {"filter": 'userName eq "nobody@example.com"'}
        async with the_whole_budget():
            refused = await scim.get("/Users", params=lookup)
            with pytest.raises(Unavailable):
                await prepared(sa.select(users.c.id)).rows(DirectReads(engine), {})

        async def held_a_moment() -> None:
            async with the_whole_budget(pause=0.1):
                pass

        holder = asyncio.create_task(held_a_moment())
        await asyncio.sleep(0.02)
        waited = await scim.get("/Users", params=lookup)
        await holder
        await clients.aclose()
    finally:
        await dispose(engine)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "10"
    assert waited.status_code == 200 and waited.json()["totalResults"] == 0
