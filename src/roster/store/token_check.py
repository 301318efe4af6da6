"""Checking an app token on every request, without SQLAlchemy's per-statement cost.

The check must ask the database each time (a revocation in any process takes effect on the
next request), so it is one indexed, prepared query on connections of its own: on PostgreSQL a
few autocommit connections taken in turn (psycopg queues the queries of one connection; a pool's
checkout would cost a fifth of the check), on SQLite a read-only sqlite3 connection (a lookup of
a few microseconds, done on the event loop's thread). The query is `sessions.LIVE`, compiled once
for the driver, so there is one definition of a live session."""

import itertools
import sqlite3
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from roster.store.directory import now
from roster.store.sessions import LIVE, Session, parse

CONNECTIONS = 4


def _sql(dialect: sa.Dialect) -> tuple[str, tuple[str, ...]]:
    """The query as the driver takes it, and the order of its positional parameters."""
    compiled = LIVE.compile(dialect=dialect)
    return str(compiled), tuple(compiled.positiontup or ())


class TokenCheck:
    def __init__(self, engine: AsyncEngine) -> None:
        url = engine.url
        self._sqlite: sqlite3.Connection | None = None
        self._postgres = url.get_backend_name() != "sqlite"
        self._connections: list[psycopg.AsyncConnection[Any] | None] = [None] * CONNECTIONS
        if not self._postgres:
            self._path = url.database or ":memory:"
            self._query, _ = _sql(sqlite_dialect.dialect(paramstyle="named"))
        else:
            self._url = url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._turn = itertools.count()
            # Positional: psycopg converts a query with named parameters on every execution.
            self._query, self._order = _sql(postgresql.psycopg.dialect(paramstyle="format"))

    async def session(self, presented: str, kind: str) -> Session | None:
        """The live session of a present, active user this token is; None for every kind of
        wrong (as `sessions.find`)."""
        parsed = parse(presented)
        if parsed is None:
            return None
        (tenant_id, hashed), at = parsed, now()
        if not self._postgres:
            row = self._sqlite_row(tenant_id, hashed, kind, at)
        else:
            row = await self._postgres_row(tenant_id, hashed, kind, at)
        if row is None:
            return None
        session_id, user_id, created_at, expires_at = row
        return Session(session_id, tenant_id, user_id, kind, created_at, expires_at)

    async def _postgres_row(self, tenant_id: UUID, hashed: str, kind: str, at: datetime) -> Any:
        values = {"t": tenant_id, "h": hashed, "k": kind, "now": at}
        params = tuple(values[name] for name in self._order)
        slot = next(self._turn) % CONNECTIONS
        for attempt in range(2):
            conn = self._connections[slot]
            if conn is None or conn.closed:
                conn = self._connections[slot] = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                )
            try:
                cursor = await conn.execute(self._query, params, prepare=True)
                return await cursor.fetchone()
            except psycopg.OperationalError:
                # The database restarted or dropped the connection: one new try on a new one.
                await conn.close()
                if attempt:
                    raise
        return None

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
        for conn in self._connections:
            if conn is not None:
                await conn.close()
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
