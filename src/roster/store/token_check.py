"""Checking an app token on every request, without SQLAlchemy's per-statement cost.

The check must ask the database each time (a revocation in any process takes effect on the
next request), so it is one indexed query on connections of its own: a psycopg pool in
autocommit on PostgreSQL, a read-only sqlite3 connection on SQLite (a lookup of a few
microseconds, done on the event loop's thread). The query is `sessions.LIVE`, compiled once
for the driver, so there is one definition of a live session."""

import sqlite3
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from roster.store.directory import now
from roster.store.sessions import LIVE, TOKEN, Session, digest


def _sql(dialect: sa.Dialect) -> str:
    return str(LIVE.compile(dialect=dialect))


class TokenCheck:
    def __init__(self, engine: AsyncEngine) -> None:
        url = engine.url
        self._sqlite: sqlite3.Connection | None = None
        self._pool: AsyncConnectionPool | None = None
        if url.get_backend_name() == "sqlite":
            self._path = url.database or ":memory:"
            self._query = _sql(sqlite_dialect.dialect(paramstyle="named"))
        else:
            plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._pool = AsyncConnectionPool(
                plain, min_size=1, max_size=8, open=False, kwargs={"autocommit": True}
            )
            self._query = _sql(postgresql.psycopg.dialect())

    async def session(self, presented: str, kind: str) -> Session | None:
        """The live session of a present, active user this token is; None for every kind of
        wrong (as `sessions.find`)."""
        match = TOKEN.fullmatch(presented or "")
        if not match:
            return None
        tenant_id, hashed, at = UUID(match[1]), digest(match[2]), now()
        if self._pool is None:
            row = self._sqlite_row(tenant_id, hashed, kind, at)
        else:
            row = await self._postgres_row(tenant_id, hashed, kind, at)
        if row is None:
            return None
        session_id, user_id, created_at, expires_at = row
        return Session(session_id, tenant_id, user_id, kind, created_at, expires_at)

    async def _postgres_row(self, tenant_id: UUID, hashed: str, kind: str, at: datetime) -> Any:
        assert self._pool is not None
        if self._pool.closed:
            await self._pool.open()
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            await cursor.execute(self._query, {"t": tenant_id, "h": hashed, "k": kind, "now": at})
            return await cursor.fetchone()

    def _sqlite_row(self, tenant_id: UUID, hashed: str, kind: str, at: datetime) -> Any:
        if self._sqlite is None:
            self._sqlite = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True)
        # Stored as SQLAlchemy stores them on SQLite: ids as 32 hex digits, times as naive UTC.
        params = {
            "t": tenant_id.hex,
            "h": hashed,
            "k": kind,
            "now": at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        }
        row = self._sqlite.execute(self._query, params).fetchone()
        if row is None:
            return None
        session_id, user_id, created_at, expires_at = row
        return (
            UUID(session_id),
            UUID(user_id),
            datetime.fromisoformat(created_at).replace(tzinfo=UTC),
            datetime.fromisoformat(expires_at).replace(tzinfo=UTC),
        )

    async def close(self) -> None:
        if self._pool is not None and not self._pool.closed:
            await self._pool.close()
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
