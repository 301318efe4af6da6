"""Statements of the busiest paths (a SCIM lookup, a single user's write, the app's token
check), run on the driver.

Building, keying and executing a SQLAlchemy statement cost a small keyed query several times
what the database needs for it. So a statement here is written in SQLAlchemy Core as everywhere
else, compiled once per dialect (and per set of columns written), and run straight on a driver
connection with PostgreSQL's prepared statements: `prepared(stmt).rows(conn, values)`, where
`conn` is the caller's `AsyncConnection` (its driver connection, in its transaction), a
`DirectTransaction` of `DirectWrites`, or `DirectReads` (connections of their own for reads that
need no transaction). Values go in and come out through the column types' own processors, and
driver errors are raised as SQLAlchemy's, so rows and failures look exactly as `conn.execute`
gives them (the store's typed errors, Unavailable and Unstorable, included)."""

import asyncio
import itertools
import json
import operator
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from roster.store import db
from roster.store.db import (
    sqlite_file,
    typed_error,
    unavailable,
    unavailable_error,
    writer_turn,
)

Processor = Callable[[Any], Any] | None

# Positional parameters: psycopg rewrites a query with named ones on every execution.
_DIALECTS: dict[str, sa.Dialect] = {
    "postgresql": postgresql.psycopg.dialect(paramstyle="format"),
    "sqlite": sqlite.dialect(paramstyle="qmark", json_serializer=db.json_text),
    "asyncpg": postgresql.asyncpg.dialect(),  # DirectReads' and DirectWrites' on PostgreSQL
}


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in order
    fixed: dict[str, Any]  # values the statement itself binds (literals in it)
    binds: tuple[Processor, ...]
    columns: tuple[str, ...]  # the result's, for statements that return rows
    results: tuple[Processor, ...]
    # Every lookup and every log row binds through these: one C call takes the values, and
    # only the parameters with a processor are visited.
    take: Callable[[Mapping[str, Any]], Any] = field(init=False, repr=False)
    processed: tuple[tuple[int, Callable[[Any], Any]], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        take = operator.itemgetter(*self.names) if self.names else (lambda values: ())
        processed = tuple((i, p) for i, p in enumerate(self.binds) if p is not None)
        object.__setattr__(self, "take", take)
        object.__setattr__(self, "processed", processed)

    @classmethod
    def of(cls, statement: Any, dialect: sa.Dialect, keys: Sequence[str]) -> "_Compiled":
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        names = tuple(compiled.positiontup or ())
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            raise ValueError("columns with Python-side defaults must be given")
        binds = compiled.binds
        exported = getattr(statement, "exported_columns", ())
        return cls(
            str(compiled),
            names,
            {name: binds[name].value for name in names if not binds[name].required},
            tuple(binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names),
            tuple(column.key for column in exported),
            tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in exported
            ),
        )

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        taken = self.take({**self.fixed, **values} if self.fixed else values)
        if len(self.names) == 1:  # itemgetter of one name gives the value itself
            taken = (taken,)
        if not self.processed:
            return tuple(taken)
        bound = list(taken)
        for i, process in self.processed:
            if bound[i] is not None:
                bound[i] = process(bound[i])
        return tuple(bound)

    def many_parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """`parameters` of each row, column by column: the values of a row taken in one call,
        and only the columns that have a processor passed through it (an imported user binds
        26 values, 9 of them processed)."""
        if self.fixed or len(self.names) < 2:
            return [self.parameters(row) for row in rows]
        taken = list(map(self.take, rows))
        if not self.processed:
            return taken
        columns: list[Sequence[Any]] = list(zip(*taken, strict=True))
        for n, process in self.processed:
            columns[n] = [None if value is None else process(value) for value in columns[n]]
        return list(zip(*columns, strict=True))

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        return {
            name: value if process is None or value is None else process(value)
            for name, value, process in zip(self.columns, raw, self.results, strict=True)
        }


@cache
def prepared(statement: Any) -> "Prepared":
    """The one Prepared of a statement built once (module-level)."""
    return Prepared(statement)


class Prepared:
    """One statement: `await Prepared(stmt).rows(conn, {"t": ...})`."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._writes = not isinstance(statement, sa.Select)
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled] = {}

    def compiled(self, dialect: str, values: Mapping[str, Any]) -> _Compiled:
        # An INSERT or UPDATE writes the columns its values name: compiled per set of them.
        keys = frozenset(values) if self._writes else frozenset()
        compiled = self._compiled.get((dialect, keys))
        if compiled is None:
            compiled = _Compiled.of(self.statement, _DIALECTS[dialect], sorted(keys))
            self._compiled[(dialect, keys)] = compiled
        return compiled

    async def rows(self, conn: "Source", values: Mapping[str, Any]) -> list[dict[str, Any]]:
        compiled = self.compiled(conn.dialect.name, values)
        raw = await _run(conn, compiled.sql, compiled.parameters(values), fetch=True)
        return [compiled.row(found) for found in raw]

    async def first(self, conn: "Source", values: Mapping[str, Any]) -> dict[str, Any] | None:
        found = await self.rows(conn, values)
        return found[0] if found else None

    async def run(self, conn: "Connection", values: Mapping[str, Any]) -> int:
        """Execute for its effect; how many rows it touched."""
        compiled = self.compiled(conn.dialect.name, values)
        count: int = await _run(conn, compiled.sql, compiled.parameters(values), fetch=False)
        return count

    async def many(self, conn: "Connection", rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute once for each row (all naming the same columns) in one executemany on the
        driver: SQLAlchemy's own costs several times as much CPU a row. Through aiosqlite,
        SQLite's own work runs on its thread, off the event loop's. How many rows it touched
        in all (-1 on asyncpg, whose executemany does not tell)."""
        if not rows:
            return 0
        compiled = self.compiled(conn.dialect.name, rows[0])
        parameters = compiled.many_parameters(rows)
        try:
            if isinstance(conn, DirectTransaction):
                if conn.dialect.name == "sqlite" and isinstance(self.statement, sa.Insert):
                    return await _insert_in_groups(conn, compiled.sql, parameters)
                return await conn.run_many(compiled.sql, parameters)
            driver: Any = (await conn.get_raw_connection()).driver_connection
            if conn.dialect.name == "postgresql":
                async with driver.cursor() as cursor:
                    await cursor.executemany(compiled.sql, parameters)
                    return int(cursor.rowcount)
            cursor = await driver.executemany(compiled.sql, parameters)
            return int(cursor.rowcount)
        except _DRIVER_ERRORS as error:
            raise _translated(error, compiled.sql, parameters[0]) from error


ROWS_A_STATEMENT = 50  # SQLite: 50 rows of up to 19 values stay under its 999 parameters


async def _insert_in_groups(
    conn: "DirectTransaction", sql: str, parameters: list[tuple[Any, ...]]
) -> int:
    """Rows of one INSERT written ROWS_A_STATEMENT to a statement (`VALUES (…), (…), …`):
    SQLite's cost of a statement, paid once a group instead of once a row, is half of a
    small row's."""
    row = sql.rpartition(" VALUES ")[2]  # "(?, ?, …)"
    if len(parameters[0]) * ROWS_A_STATEMENT > 999:
        return await conn.run_many(sql, parameters)
    whole, rest = divmod(len(parameters), ROWS_A_STATEMENT)
    groups = [
        tuple(itertools.chain.from_iterable(parameters[i : i + ROWS_A_STATEMENT]))
        for i in range(0, whole * ROWS_A_STATEMENT, ROWS_A_STATEMENT)
    ]
    if groups:
        await conn.run_many(sql + f", {row}" * (ROWS_A_STATEMENT - 1), groups)
    if rest:
        last = tuple(itertools.chain.from_iterable(parameters[whole * ROWS_A_STATEMENT :]))
        await conn.run_many(sql + f", {row}" * (rest - 1), [last])
    return len(parameters)


async def _run(conn: "Source", sql: str, parameters: tuple[Any, ...], *, fetch: bool) -> Any:
    try:
        if isinstance(conn, DirectTransaction | DirectReads):
            return await conn.run(sql, parameters, fetch=fetch)
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        if conn.dialect.name == "postgresql":
            cursor = await driver.execute(sql, parameters, prepare=True)
            return await cursor.fetchall() if fetch else cursor.rowcount
        if fetch:  # aiosqlite: one trip to its thread
            return await driver.execute_fetchall(sql, parameters)
        cursor = await driver.execute(sql, parameters)
        return cursor.rowcount
    except _DRIVER_ERRORS as error:
        raise _translated(error, sql, parameters) from error


_DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    psycopg.Error,
    sqlite3.Error,
    OSError,
)


def _translated(error: Exception, sql: str, parameters: tuple[Any, ...]) -> Exception:
    """A driver's error as SQLAlchemy's engines raise it: the store's typed errors (see
    store.db.typed_error), IntegrityError for a unique index, and so on."""
    typed = typed_error(error)
    if typed is not None:
        return typed
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return sa.exc.IntegrityError(sql, parameters, error)
    if isinstance(error, asyncpg.PostgresError):
        return sa.exc.DBAPIError(sql, parameters, error)
    if isinstance(error, psycopg.Error | sqlite3.Error):
        base = psycopg.Error if isinstance(error, psycopg.Error) else sqlite3.Error
        return sa.exc.DBAPIError.instance(sql, parameters, error, base)
    return error


class _Connections:
    """A fixed number of asyncpg connections taken in turn, each opened when first needed
    (again, when the database dropped it). asyncpg runs one query at a time on a connection, so
    each has a lock, which queues its tasks first come, first served (with a shared queue of
    idle connections, newcomers would overtake tasks already waiting). A connection
    given back mid-transaction (its task cancelled during a statement, or a rollback that
    failed) is closed, never reused: its next user's writes would run inside the stale
    transaction and never commit."""

    def __init__(self, engine: AsyncEngine, count: int) -> None:
        self._url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connections: list[asyncpg.Connection | None] = [None] * count
        self._locks = [asyncio.Lock() for _ in range(count)]
        self._turn = itertools.count()

    @asynccontextmanager
    async def held(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection, in turn. A failure the database is to blame for (see
        store.db.unavailable) closes it, so the next user of the slot connects anew: asyncpg
        leaves a connection that lost its server mid-operation in a state no query can use."""
        slot = next(self._turn) % len(self._locks)
        async with self._locks[slot]:
            conn = await self._connected(slot)
            interrupted = broken = True
            try:
                yield conn
                interrupted = broken = False
            except db.Unavailable:
                interrupted = False
                raise
            except _DRIVER_ERRORS as error:
                interrupted, broken = False, unavailable(error)
                if broken:  # met outside a statement too (the transaction's BEGIN or ROLLBACK)
                    raise unavailable_error(error) from error
                raise
            except Exception:
                interrupted = broken = False  # a statement failed; the transaction rolled back
                raise
            finally:
                # A closed connection has no protocol left to ask about its transaction.
                if interrupted or broken or conn.is_closed() or conn.is_in_transaction():
                    conn.terminate()
                    self._connections[slot] = None

    async def _connected(self, slot: int) -> asyncpg.Connection:
        conn = self._connections[slot]
        if conn is not None and not conn.is_closed():
            return conn
        self._connections[slot] = conn = None
        try:
            conn = await asyncpg.connect(self._url)
            await _codecs(conn)
        except _DRIVER_ERRORS as error:
            if conn is not None:
                conn.terminate()
            raise _translated(error, "(connecting)", ()) from error
        self._connections[slot] = conn
        return conn

    def opened(self) -> list[asyncpg.Connection]:
        return [conn for conn in self._connections if conn is not None]

    async def close(self) -> None:
        for conn in self.opened():
            await conn.close()
        self._connections = [None] * len(self._locks)


class DirectReads:
    """Reads on every request that need no transaction (the app's token check, a SCIM lookup)
    on connections of their own, so they never wait for a pooled SQLAlchemy one. On PostgreSQL
    a few asyncpg connections taken in turn: its prepared statements cost a keyed lookup a
    third of psycopg's CPU (a lookup's budget is half a millisecond all told). On SQLite a
    read-only sqlite3 connection, used on the event loop's thread (a keyed lookup takes
    microseconds). Each read sees what is committed, in any process, at that moment."""

    CONNECTIONS = 4

    def __init__(self, engine: AsyncEngine) -> None:
        self._sqlite: sqlite3.Connection | None = None
        self._postgres: _Connections | None = None
        if engine.url.get_backend_name() == "sqlite":
            self.dialect = _Dialect("sqlite")
            self._read_only = Path(sqlite_file(engine)).as_uri() + "?mode=ro"
        else:
            self.dialect = _Dialect("asyncpg")
            self._postgres = _Connections(engine, self.CONNECTIONS)

    async def run(self, sql: str, parameters: tuple[Any, ...], *, fetch: bool) -> Any:
        if not fetch:
            raise TypeError("DirectReads only reads")
        if self._postgres is None:
            return self._sqlite_rows(sql, parameters)
        for attempt in range(2):
            async with self._postgres.held() as conn:
                try:
                    return await conn.fetch(sql, *parameters)
                except _DRIVER_ERRORS as error:
                    if attempt or not unavailable(error):
                        raise
                    # The database restarted or dropped the connection: one try on a new one.
                    conn.terminate()
        return []

    def _sqlite_rows(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        if self._sqlite is None:
            self._sqlite = sqlite3.connect(self._read_only, uri=True)
        return self._sqlite.execute(sql, parameters).fetchall()

    async def close(self) -> None:
        if self._postgres is not None:
            await self._postgres.close()
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None


async def _codecs(conn: asyncpg.Connection) -> None:
    # As SQLAlchemy's asyncpg dialect expects them: JSON arrives serialized by the column type
    # and leaves decoded; ids leave as uuid.UUID (not asyncpg's own type).
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=str, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("uuid", encoder=str, decoder=UUID, schema="pg_catalog")


@dataclass(frozen=True)
class _Dialect:
    name: str


class DirectTransaction:
    """One transaction of DirectWrites (or one statement, committed on its own): `prepared(stmt)`
    runs in it as in an AsyncConnection's, and so does `directory.apply` for a plan of one
    user."""

    def __init__(self, conn: asyncpg.Connection | sqlite3.Connection) -> None:
        self._conn = conn
        self.dialect = _Dialect("sqlite" if isinstance(conn, sqlite3.Connection) else "asyncpg")

    async def run(self, sql: str, parameters: tuple[Any, ...], *, fetch: bool) -> Any:
        conn = self._conn
        if isinstance(conn, sqlite3.Connection):
            cursor = conn.execute(sql, parameters)
            return cursor.fetchall() if fetch else cursor.rowcount
        if fetch:
            return await conn.fetch(sql, *parameters)
        status = await conn.execute(sql, *parameters)  # "UPDATE 1", "INSERT 0 1"
        return int(status.rsplit(" ", 1)[-1])

    async def run_many(self, sql: str, parameters: list[tuple[Any, ...]]) -> int:
        conn = self._conn
        if isinstance(conn, sqlite3.Connection):
            return conn.executemany(sql, parameters).rowcount
        await conn.executemany(sql, parameters)
        return -1


class _SqliteWriter:
    """DirectWrites' connection on SQLite, used on the event loop's thread in the process's
    turn of writers (store.db.writer_turn). While another process (a CLI import) writes, the
    loop must not block in SQLite's busy handler: BEGIN is tried again after BUSY_PAUSE, for as
    long as SQLAlchemy's writers would wait."""

    BUSY_PAUSE = 0.005

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: sqlite3.Connection | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DirectTransaction]:
        async with writer_turn(self._engine):
            transaction = DirectTransaction(await self._begun())
            try:
                yield transaction
                await _run(transaction, "COMMIT", (), fetch=False)
            except BaseException:
                self._rolled_back()
                raise

    async def _begun(self) -> sqlite3.Connection:
        if self._conn is None:
            # Autocommit mode: BEGIN and COMMIT are ours. No busy timeout (see BUSY_PAUSE).
            path = sqlite_file(self._engine)
            self._conn = sqlite3.connect(path, timeout=0, isolation_level=None)
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        deadline = asyncio.get_running_loop().time() + db.SQLITE_BUSY_SECONDS
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return self._conn
            except sqlite3.Error as error:
                if not unavailable(error) or asyncio.get_running_loop().time() > deadline:
                    raise _translated(error, "BEGIN IMMEDIATE", ()) from error
            await asyncio.sleep(self.BUSY_PAUSE)

    def _rolled_back(self) -> None:
        conn = self._conn
        try:
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:  # never leave a transaction open for the next writer
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class DirectWrites:
    """Short write transactions of SCIM writes to one user (a create, PUT, PATCH, DELETE)
    straight on the driver. On PostgreSQL, asyncpg connections of their own: statements cost a
    third of what they cost through SQLAlchemy and psycopg; each transaction holds one of
    CONNECTIONS connections, taken in turn, more wait their turn (a write waiting on a row lock
    holds up the writes queued on its connection, not the others). On SQLite, a sqlite3
    connection used on the event loop's thread (_SqliteWriter): the whole transaction takes a
    fraction of a millisecond there, where every statement through aiosqlite is a trip to its
    thread and back, and the one writer's turn lasts as long as all the trips (creates were
    bound at 500/s by that, the CPU idle)."""

    CONNECTIONS = 16

    def __init__(self, engine: AsyncEngine) -> None:
        self._sqlite: _SqliteWriter | None = None
        self._postgres: _Connections | None = None
        if engine.url.get_backend_name() == "sqlite":
            self._sqlite = _SqliteWriter(engine)
        else:
            self._postgres = _Connections(engine, self.CONNECTIONS)
        # Whether one statement may write to two tables (PostgreSQL's data-modifying WITH).
        self.single_statements = self._postgres is not None

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[DirectTransaction]:
        """A connection for one statement that commits on its own (PostgreSQL only)."""
        if self._postgres is None:
            raise TypeError("SQLite writes in transactions (DirectWrites.transaction)")
        async with self._postgres.held() as conn:
            yield DirectTransaction(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DirectTransaction]:
        """A connection dropped meanwhile fails this transaction; the next one reconnects."""
        if self._sqlite is not None:
            async with self._sqlite.transaction() as transaction:
                yield transaction
            return
        assert self._postgres is not None
        async with self._postgres.held() as conn, conn.transaction():
            yield DirectTransaction(conn)

    async def close(self) -> None:
        if self._postgres is not None:
            await self._postgres.close()
        if self._sqlite is not None:
            self._sqlite.close()


# What prepared statements run on: a transaction (SQLAlchemy's, or DirectWrites'), or, for
# reads only, DirectReads.
Connection = AsyncConnection | DirectTransaction
Source = Connection | DirectReads


def bulk(conn: Connection) -> AsyncConnection:
    """The SQLAlchemy connection for statements of many rows (executemany, COPY), which only a
    plan of one user's change or addition avoids: DirectWrites takes no other."""
    if not isinstance(conn, AsyncConnection):
        raise TypeError("statements of many rows need a SQLAlchemy connection")
    return conn
