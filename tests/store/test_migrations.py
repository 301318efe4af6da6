"""The migrations build exactly the schema the code describes, on every database."""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from roster.domain.collation import sort_key
from roster.store import imports as imports_history
from roster.store import user_search
from roster.store.db import (
    alembic_config,
    create_engine,
    dispose,
    migrate,
    newest_revision,
    scratch_postgres,
    writing,
)
from roster.store.imports import ImportStatus
from roster.store.schema import groups, metadata, tenants, users
from roster.store.user_search import Query
from tests.conftest import POSTGRES_URL


async def test_migrated_schema_matches_the_tables(engine):
    def differences(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []


# Keys recomputed by 0010: compatibility forms folded, a clash keeps the later row's old key.

FULL_WIDTH = "ａｄｍｉｎ"


@pytest.fixture
def fresh_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's backend."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    assert POSTGRES_URL
    with scratch_postgres(POSTGRES_URL, "roster_keys") as url:
        yield url


def _upgrade(connection: sa.Connection, url: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def _upgraded(engine: AsyncEngine, url: str, revision: str) -> None:
    async with engine.connect() as conn:
        await conn.run_sync(_upgrade, url, revision)
        await conn.commit()


def _user(tenant_id: UUID, n: int, username: str, email: str) -> dict[str, Any]:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
    return {
        "tenant_id": tenant_id,
        "id": uuid4(),
        "username": username,
        "username_key": username.casefold(),  # as the earlier code made keys
        "first_name": "Jan",
        "surname": "Jansen",
        "display_name": "Jan",
        "email": email,
        "email_key": email.casefold(),
        "active": True,
        "role": "user",
        "managed_by": "csv",
        "created_at": at,
        "updated_at": at,
        "version": 1,
    }


async def test_0010_recomputes_keys_and_keeps_both_users_of_a_clash(fresh_url, caplog):
    engine = create_engine(fresh_url)
    try:
        await _upgraded(engine, fresh_url, "0007")
        tenant_id, at = uuid4(), datetime(2026, 1, 1, tzinfo=UTC)
        admin = _user(tenant_id, 1, "admin", "admin@example.com")
        clash = _user(tenant_id, 2, FULL_WIDTH, "other@example.com")
        wide = _user(tenant_id, 3, "Ｊａｎ", "Ｊａｎ@example.com")
        mail_clash = _user(tenant_id, 4, "piet", "ADMIN@example.com".replace("A", "Ａ"))
        async with writing(engine) as conn:
            await conn.execute(
                tenants.insert().values(tenant_id=tenant_id, slug="old", name="Old", created_at=at)
            )
            await conn.execute(users.insert(), [admin, clash, wide, mail_clash])
            await conn.execute(
                groups.insert().values(
                    tenant_id=tenant_id,
                    id=uuid4(),
                    display_name="Ｓａｌｅｓ",
                    display_name_key="ｓａｌｅｓ",
                    created_at=at,
                    updated_at=at,
                    version=1,
                )
            )
        caplog.set_level(logging.WARNING)
        await migrate(engine)
        async with engine.connect() as conn:
            found = {
                r.id: (r.username_key, r.email_key)
                for r in await conn.execute(sa.select(users).where(users.c.tenant_id == tenant_id))
            }
            group_key = (await conn.execute(sa.select(groups.c.display_name_key))).scalar_one()
        assert found == {
            admin["id"]: ("admin", "admin@example.com"),
            clash["id"]: (FULL_WIDTH, "other@example.com"),  # kept: "admin" is taken
            wide["id"]: ("jan", "jan@example.com"),
            mail_clash["id"]: ("piet", mail_clash["email_key"]),  # kept: admin@ is taken
        }
        assert group_key == "sales"
        warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
        assert f"username {clash['id']} keeps its old key" in warned
        assert f"email {mail_clash['id']} keeps its old key" in warned
    finally:
        await dispose(engine)


def test_the_newest_revision_is_alembics_head():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite:///unused.db"))
    assert newest_revision() == script.get_current_head()


async def test_a_current_schema_costs_one_query(engine):
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        await migrate(engine)
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", seen)
    queries = [s for s in statements if s not in ("BEGIN", "COMMIT", "ROLLBACK")]
    assert queries == ["SELECT version_num FROM alembic_version"]


# 0014: two indexes hold only the rows looked up by them.

PARTIAL_INDEXES = {
    "ix_users_tenant_id_external_id": "external_id",
    "ix_audit_events_tenant_id_import_id": "import_id",
}


def _downgrade(connection: sa.Connection, url: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def _index_definitions(engine: AsyncEngine) -> dict[str, str]:
    if engine.dialect.name == "sqlite":
        query = sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    else:
        query = sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    async with engine.connect() as conn:
        found = {name: definition for name, definition in await conn.execute(query)}
    return {name: found[name] for name in PARTIAL_INDEXES}


async def test_0014_makes_two_indexes_partial_and_back(fresh_url):
    engine = create_engine(fresh_url)
    try:
        await _upgraded(engine, fresh_url, "0013")
        tenant_id, at = uuid4(), datetime(2026, 1, 1, tzinfo=UTC)
        async with writing(engine) as conn:
            await conn.execute(
                tenants.insert().values(tenant_id=tenant_id, slug="old", name="Old", created_at=at)
            )
            await conn.execute(users.insert(), [_user(tenant_id, 1, "jan", "jan@example.com")])
        await migrate(engine)
        for name, definition in (await _index_definitions(engine)).items():
            assert f"{PARTIAL_INDEXES[name]} IS NOT NULL" in definition, name
        async with engine.connect() as conn:
            await conn.run_sync(_downgrade, fresh_url, "0013")
            await conn.commit()
        for name, definition in (await _index_definitions(engine)).items():
            assert "WHERE" not in definition.upper(), name
        await migrate(engine)
        async with engine.connect() as conn:
            kept = (await conn.execute(sa.select(users.c.username))).scalars().all()
        assert kept == ["jan"]
    finally:
        await dispose(engine)


# 0015: an index of the held imports alone.


async def _indexes(engine: AsyncEngine) -> dict[str, str]:
    if engine.dialect.name == "sqlite":
        query = sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    else:
        query = sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    async with engine.connect() as conn:
        return {name: definition or "" for name, definition in await conn.execute(query)}


async def test_0015_indexes_the_held_imports_alone_and_back(fresh_url):
    engine = create_engine(fresh_url)
    try:
        await _upgraded(engine, fresh_url, "0014")
        tenant_id, at = uuid4(), datetime(2026, 1, 1, tzinfo=UTC)
        async with writing(engine) as conn:
            await conn.execute(
                tenants.insert().values(tenant_id=tenant_id, slug="old", name="Old", created_at=at)
            )
            for status in ("held", "applied", "held", "discarded"):
                await imports_history.record(
                    conn, import_id=uuid4(), tenant_id=tenant_id, channel="sftp", actor="t",
                    file_name=None, mode="replace", status=ImportStatus(status), counts={},
                    report={},
                )  # fmt: skip
        await migrate(engine)
        definition = (await _indexes(engine))["ix_imports_tenant_id_held"]
        assert "WHERE" in definition.upper() and "'held'" in definition  # held ones alone
        async with engine.connect() as conn:
            assert (await imports_history.held_by_organization(conn, "sftp"))["old"] == 2
            await conn.run_sync(_downgrade, fresh_url, "0014")
            await conn.commit()
        assert "ix_imports_tenant_id_held" not in await _indexes(engine)
        await migrate(engine)
        assert "ix_imports_tenant_id_held" in await _indexes(engine)
    finally:
        await dispose(engine)


# 0016: names and departments sort by collation keys, filled for the users already there.

SORT_INDEXES = {
    "ix_users_tenant_id_display_name_sort_key",
    "ix_users_tenant_id_department_sort_key",
}
CODE_POINT_INDEXES = {"ix_users_tenant_id_display_name", "ix_users_tenant_id_department"}


async def _user_indexes(engine: AsyncEngine) -> set[str]:
    def names(connection: sa.Connection) -> set[str]:
        return {index["name"] for index in sa.inspect(connection).get_indexes("users")}

    async with engine.connect() as conn:
        return await conn.run_sync(names)


async def test_0016_fills_the_sort_keys_of_existing_users_and_back(fresh_url):
    """More users than one chunk of the fill, in two organizations, each given the keys the
    application writes; the list then sorts them as people expect."""
    engine = create_engine(fresh_url)
    try:
        await _upgraded(engine, fresh_url, "0015")
        at = datetime(2026, 1, 1, tzinfo=UTC)
        first, second = uuid4(), uuid4()
        names = ["Weiß", "schröder", "KRÜGER", "Köhler", "Çelik", "Dubois", "Schäfer"]
        departments = ["Zentrale", "Einkauf", None, "Öffentlichkeit", "Ärztlicher Dienst"]
        rows = [
            _user(tenant_id, n, f"user{n:05d}", f"user{n:05d}@example.com")
            | {"display_name": names[n % 7], "department": departments[n % 5]}
            for n in range(2100)
            for tenant_id in [first if n < 1500 else second]
        ]
        async with writing(engine) as conn:
            for tenant_id in (first, second):
                await conn.execute(
                    tenants.insert().values(
                        tenant_id=tenant_id,
                        slug=f"o-{tenant_id.hex[:8]}",
                        name="Old",
                        created_at=at,
                    )
                )
            await conn.execute(users.insert(), rows)
        await migrate(engine)
        async with engine.connect() as conn:
            stored = (
                await conn.execute(
                    sa.select(
                        users.c.display_name,
                        users.c.display_name_sort_key,
                        users.c.department,
                        users.c.department_sort_key,
                    )
                )
            ).all()
            first_page, total = await user_search.search(conn, first, Query(sort="name"))
            last_page, _ = await user_search.search(
                conn, first, Query(sort="name", descending=True)
            )
            no_department, _ = await user_search.search(conn, second, Query(sort="department"))
            last_department, _ = await user_search.search(
                conn, second, Query(sort="department", descending=True)
            )
        assert len(stored) == 2100
        for name, name_key, department, department_key in stored:
            assert (name_key, department_key) == (sort_key(name), sort_key(department))
        assert total == 1500
        # Çelik first and Weiß last, where code points put them the other way around.
        assert {u["display_name"] for u in first_page} == {"Çelik"}
        assert {u["display_name"] for u in last_page} == {"Weiß"}
        assert {u["department"] for u in no_department} == {None}  # first on both databases
        assert {u["department"] for u in last_department} == {"Zentrale"}
        assert await _user_indexes(engine) >= SORT_INDEXES
        async with engine.connect() as conn:
            await conn.run_sync(_downgrade, fresh_url, "0015")
            await conn.commit()
        found = await _user_indexes(engine)
        assert found >= CODE_POINT_INDEXES and not SORT_INDEXES & found
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda c: {column["name"] for column in sa.inspect(c).get_columns("users")}
            )
            kept = (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar()
        assert "display_name_sort_key" not in columns and kept == 2100
        await migrate(engine)  # and up again
        assert await _user_indexes(engine) >= SORT_INDEXES
    finally:
        await dispose(engine)


# 0019: the audit log's time index orders an import's events (one time) by id.


async def _audit_time_indexes(engine: AsyncEngine) -> dict[str, list[str]]:
    def read(connection: sa.Connection) -> dict[str, list[str]]:
        found = sa.inspect(connection).get_indexes("audit_events")
        return {i["name"]: i["column_names"] for i in found if "at" in i["column_names"]}

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def test_0019_adds_id_to_the_audit_log_s_time_index_and_back(fresh_url):
    engine = create_engine(fresh_url)
    try:
        await _upgraded(engine, fresh_url, "0018")
        before = {
            "ix_audit_events_tenant_id_at": ["tenant_id", "at"],
            "ix_audit_events_tenant_id_user_id_at": ["tenant_id", "user_id", "at"],
        }
        assert await _audit_time_indexes(engine) == before
        await migrate(engine)
        assert await _audit_time_indexes(engine) == {
            "ix_audit_events_tenant_id_at_id": ["tenant_id", "at", "id"],
            "ix_audit_events_tenant_id_user_id_at": ["tenant_id", "user_id", "at"],
        }
        async with engine.connect() as conn:
            await conn.run_sync(_downgrade, fresh_url, "0018")
            await conn.commit()
        assert await _audit_time_indexes(engine) == before
    finally:
        await dispose(engine)
