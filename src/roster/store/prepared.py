"""Statements of the busiest paths (a SCIM lookup, a single user's write, the app's token
check), run on the driver.

Building, keying and executing a SQLAlchemy statement cost a small keyed query several times
what the database needs for it. So a statement here is written in SQLAlchemy Core as everywhere
else, compiled once per dialect (and per set of columns written), and run straight on a driver
connection with PostgreSQL's prepared statements: `prepared(stmt).rows(conn, values)`, where
`conn` is the caller's `AsyncConnection` (its driver connection, in its transaction), a
`DirectTransaction` of `DirectWrites`, or `DirectReads` (for reads that need no transaction; on
PostgreSQL both borrow asyncpg connections from the engine's pool, the process's one budget).
Values go in and come out through the column types' own processors, and driver errors are
raised as SQLAlchemy's, so rows and failures look exactly as `conn.execute` gives them (the
store's typed errors, Unavailable and Unstorable, included)."""

import asyncio
import heapq
import itertools
import operator
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from roster.store import db
from roster.store.db import (
    driver_error,
    is_driver_error,
    sqlite_file,
    typed_error,
    unavailable,
    unavailable_error,
    writer_turn,
)

if TYPE_CHECKING:
    import asyncpg

Processor = Callable[[Any], Any] | None


@cache
def _dialect(name: str) -> sa.Dialect:
    """The dialect statements are compiled for: SQLite's, or asyncpg's for a SQLAlchemy
    connection's and DirectReads' and DirectWrites' alike (compiling only; asyncpg itself is
    loaded by an engine). Made on first use, so SQLite never loads PostgreSQL's dialect."""
    if name == "sqlite":
        return sqlite.dialect(paramstyle="qmark", json_serializer=db.json_text)
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    return dialect()


def _with_processor(
    processors: Sequence[Processor],
) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """The positions that have a processor, with it."""
    return tuple((n, p) for n, p in enumerate(processors) if p is not None)


def _by_column(
    rows: Sequence[Sequence[Any]], processed: Sequence[tuple[int, Callable[[Any], Any]]]
) -> list[tuple[Any, ...]]:
    """The rows with the values of each processed column passed through its processor, a
    column at a time (None stays None)."""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for n, process in processed:
        columns[n] = [None if value is None else process(value) for value in columns[n]]
    return list(zip(*columns, strict=True))


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
    processed_results: tuple[tuple[int, Callable[[Any], Any]], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        take = operator.itemgetter(*self.names) if self.names else (lambda values: ())
        object.__setattr__(self, "take", take)
        object.__setattr__(self, "processed", _with_processor(self.binds))
        object.__setattr__(self, "processed_results", _with_processor(self.results))

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
        return _by_column(taken, self.processed)

    def values(self, raw: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Result rows as tuples of their values, processed column by column (only the
        columns that have a processor)."""
        if not raw or not self.processed_results:
            return [tuple(found) for found in raw]
        return _by_column(raw, self.processed_results)

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
        self._counting: Prepared | None = None  # see run_each

    def compiled(self, dialect: str, values: Mapping[str, Any]) -> _Compiled:
        # An INSERT or UPDATE writes the columns its values name: compiled per set of them.
        keys = frozenset(values) if self._writes else frozenset()
        compiled = self._compiled.get((dialect, keys))
        if compiled is None:
            compiled = _Compiled.of(self.statement, _dialect(dialect), sorted(keys))
            self._compiled[(dialect, keys)] = compiled
        return compiled

    async def rows(self, conn: "Source", values: Mapping[str, Any]) -> list[dict[str, Any]]:
        compiled = self.compiled(conn.dialect.name, values)
        raw = await _run(conn, compiled.sql, compiled.parameters(values), fetch=True)
        return [compiled.row(found) for found in raw]

    async def first(self, conn: "Source", values: Mapping[str, Any]) -> dict[str, Any] | None:
        found = await self.rows(conn, values)
        return found[0] if found else None

    async def parts(
        self, conn: AsyncConnection, values: Mapping[str, Any], size: int
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """The query's rows `size` at a time, as tuples of values (`_Compiled.values`), read
        through a cursor on the driver in the connection's transaction (on PostgreSQL a
        server-side one): a large result is never whole in memory, nor made into SQLAlchemy's
        rows."""
        compiled = self.compiled(conn.dialect.name, values)
        parameters = compiled.parameters(values)
        try:
            driver = await in_transaction(conn)
            if conn.dialect.name == "postgresql":
                cursor = await driver.cursor(compiled.sql, *parameters)
                fetch = cursor.fetch
            else:
                cursor = await driver.execute(compiled.sql, parameters)
                fetch = cursor.fetchmany
            try:
                while raw := await fetch(size):
                    yield compiled.values(raw)
            finally:  # a reader that stops early leaves no statement open (asyncpg's cursor
                if conn.dialect.name == "sqlite":  # ends with the transaction)
                    await cursor.close()
        except Exception as error:
            if not is_driver_error(error):
                raise
            raise translated(error, compiled.sql, parameters) from error

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
            driver = await in_transaction(conn)
            if conn.dialect.name == "postgresql":
                await driver.executemany(compiled.sql, parameters)
                return -1
            cursor = await driver.executemany(compiled.sql, parameters)
            return int(cursor.rowcount)
        except Exception as error:
            if not is_driver_error(error):
                raise
            raise translated(error, compiled.sql, parameters[0]) from error

    async def run_each(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute once for each row (all naming the same columns) in one round trip on
        PostgreSQL; how many rows the executions touched in all. asyncpg's executemany counts
        none, so each execution returns a row for each row it touched (RETURNING 1)."""
        if self._counting is None:
            self._counting = Prepared(self.statement.returning(sa.literal_column("1")))
        compiled = self._counting.compiled(conn.dialect.name, rows[0])
        parameters = compiled.many_parameters(rows)
        try:
            driver = await in_transaction(conn)
            return len(await driver.fetchmany(compiled.sql, parameters))
        except Exception as error:
            if not is_driver_error(error):
                raise
            raise translated(error, compiled.sql, parameters[0]) from error


async def in_transaction(conn: AsyncConnection) -> Any:
    """The driver connection under a SQLAlchemy connection, in the connection's transaction.
    SQLAlchemy's asyncpg adapter opens its transaction with its first statement, so a
    statement run on asyncpg first opens it through the adapter (whose commit or rollback
    then ends it); on the read engine (autocommit) the adapter opens none."""
    raw = await conn.get_raw_connection()
    if conn.dialect.name == "postgresql":
        adapter: Any = raw.dbapi_connection
        if adapter._transaction is None:
            await adapter._start_transaction()
    return raw.driver_connection


ROWS_A_STATEMENT = 50  # SQLite: 50 rows of up to 19 values stay under its 999 parameters


async def _insert_in_groups(
    conn: "DirectTransaction", sql: str, parameters: list[tuple[Any, ...]]
) -> int:
    """Rows of one INSERT written ROWS_A_STATEMENT to a statement (`VALUES (…), (…), …`), so
    SQLite's cost of running a statement is paid once a group, not once a row."""
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
        driver = await in_transaction(conn)
        if conn.dialect.name == "postgresql":  # asyncpg: its own prepared statements
            if fetch:
                return await driver.fetch(sql, *parameters)
            return _count(await driver.execute(sql, *parameters))
        if fetch:  # aiosqlite: one trip to its thread
            return await driver.execute_fetchall(sql, parameters)
        cursor = await driver.execute(sql, parameters)
        return cursor.rowcount
    except Exception as error:
        if not is_driver_error(error):
            raise
        raise translated(error, sql, parameters) from error


def _count(status: str) -> int:
    """The rows a statement touched, from asyncpg's status ("UPDATE 1", "INSERT 0 1")."""
    return int(status.rsplit(" ", 1)[-1])


def translated(error: BaseException, sql: str, parameters: Any) -> BaseException:
    """A driver's error as SQLAlchemy's engines raise it: the store's typed errors (see
    store.db.typed_error), IntegrityError for a constraint, DBAPIError for the rest."""
    typed = typed_error(error)
    if typed is not None:
        return typed
    cause = driver_error(error)
    if isinstance(cause, sqlite3.Error):
        return sa.exc.DBAPIError.instance(sql, parameters, cause, sqlite3.Error)
    if str(getattr(cause, "sqlstate", None) or "").startswith("23"):  # integrity constraints
        return sa.exc.IntegrityError(sql, parameters, cause)
    if isinstance(cause, Exception) and not isinstance(cause, OSError):
        return sa.exc.DBAPIError(sql, parameters, cause)
    return error


class _Lent:
    """asyncpg connections leased from a PostgreSQL engine's pool, the process's one budget of
    connections (see store.db.create_engine), for statements run on asyncpg itself. A checkout
    from SQLAlchemy's pool costs several times a lookup's own work, so a lease is kept while it
    is used and goes back to the pool after IDLE_SECONDS unused. One per engine, shared by
    DirectReads and DirectWrites: at most the pool's size less RESERVED leases, so SQLAlchemy's
    own transactions always find one (a scheduled job holds two: its lock and its transaction;
    the third serves the console and everything else meanwhile); a task beyond them waits its
    turn, first come
    first served. A connection given back mid-transaction (its task cancelled during a
    statement, or a rollback that failed) is closed, never reused: its next user's writes would
    run inside the stale transaction and never commit. One the database closed is closed with
    every connection the pool opened before it, as SQLAlchemy does for its own (a restart
    closed them all)."""

    IDLE_SECONDS = 1.0
    RESERVED = 3

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        size = engine.pool.size() - self.RESERVED  # type: ignore[attr-defined]
        if size < 1:
            raise ValueError(f"a budget of connections must be at least {self.RESERVED + 1}")
        self._free = list(range(size))  # a heap: the lowest free slot is used first
        self._leases: list[Any] = [None] * size
        self._used_at = [0.0] * size
        self._turns: asyncio.Semaphore | None = None  # made in the event loop that waits
        self._trim: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, engine: AsyncEngine) -> "_Lent":
        lent = _lenders.get(engine)
        if lent is None:
            lent = _lenders[engine] = cls(engine)
        return lent

    @asynccontextmanager
    async def held(self) -> AsyncIterator[Any]:
        """An asyncpg connection, for as long as the block runs. A failure the database is to
        blame for (see store.db.unavailable) raises Unavailable and closes the connection:
        asyncpg leaves one that lost its server mid-operation in a state no query can use."""
        if self._turns is None:
            self._turns = asyncio.Semaphore(len(self._leases))
        if self._turns.locked():
            try:
                async with asyncio.timeout(db.CONNECTION_WAIT_SECONDS):
                    await self._turns.acquire()
            except TimeoutError:
                raise db.Unavailable(
                    "the database is unavailable (all connections stayed busy)"
                ) from None
        else:
            await self._turns.acquire()  # free: returns at once
        slot = heapq.heappop(self._free)
        try:
            async with self._leased(slot) as conn:
                yield conn
        finally:
            heapq.heappush(self._free, slot)
            self._turns.release()

    @asynccontextmanager
    async def _leased(self, slot: int) -> AsyncIterator[Any]:
        lease = self._leases[slot]
        if lease is None:
            try:
                lease = await self._engine.raw_connection()
            except db.Unavailable:
                raise
            except Exception as error:
                if not is_driver_error(error):
                    raise
                raise translated(error, "(connecting)", ()) from error
            self._leases[slot] = lease
        conn = lease.driver_connection
        interrupted = broken = True
        try:
            yield conn
            interrupted = broken = False
        except db.Unavailable:
            interrupted = False
            raise
        except Exception as error:
            interrupted = False
            broken = is_driver_error(error) and unavailable(error)
            if broken:  # met outside a statement too (the transaction's BEGIN or ROLLBACK)
                raise unavailable_error(error) from error
            raise  # a statement failed; the transaction rolled back
        finally:
            if conn.is_closed():
                self._leases[slot] = None
                self._engine.sync_engine.pool._invalidate(lease)
            elif interrupted or broken or conn.is_in_transaction():
                self._leases[slot] = None
                lease.invalidate()
            else:
                loop = asyncio.get_running_loop()
                self._used_at[slot] = loop.time()
                if self._trim is None:
                    self._trim = loop.call_later(self.IDLE_SECONDS, self._give_back_idle)

    def _give_back_idle(self) -> None:
        """Return to the pool each lease unused for IDLE_SECONDS; look again when the next
        one will have been."""
        loop = asyncio.get_running_loop()
        self._trim = None
        for slot in self._free:
            lease = self._leases[slot]
            if lease is not None and loop.time() - self._used_at[slot] >= self.IDLE_SECONDS:
                self._leases[slot] = None
                lease.close()
        # Leases in use are looked at once given back (see _leased).
        kept = [self._used_at[slot] for slot in self._free if self._leases[slot] is not None]
        if kept:
            due = max(min(kept) + self.IDLE_SECONDS, loop.time() + self.IDLE_SECONDS / 10)
            self._trim = loop.call_at(due, self._give_back_idle)

    def close(self) -> None:
        """Return every lease not in use to the pool (the engine's dispose closes them)."""
        if self._trim is not None:
            self._trim.cancel()
            self._trim = None
        for slot in self._free:
            lease, self._leases[slot] = self._leases[slot], None
            if lease is not None:
                lease.close()


_lenders: "WeakKeyDictionary[AsyncEngine, _Lent]" = WeakKeyDictionary()


class DirectReads:
    """Reads on every request that need no transaction (the app's token check, a SCIM lookup)
    straight on the driver. On PostgreSQL each read borrows an asyncpg connection from the
    engine's pool for its one statement (autocommit: no BEGIN, no ROLLBACK), which spares
    SQLAlchemy's work around a statement, several times the lookup's own. On SQLite a
    read-only sqlite3 connection, used on the event loop's thread (a keyed lookup takes
    microseconds). Each read sees what is committed, in any process, at that moment."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sqlite: sqlite3.Connection | None = None
        self._postgres: _Lent | None = None
        if engine.url.get_backend_name() == "sqlite":
            self.dialect = _Dialect("sqlite")
            self._read_only = Path(sqlite_file(engine)).as_uri() + "?mode=ro"
        else:
            self.dialect = _Dialect("asyncpg")
            self._postgres = _Lent.of(engine)

    async def run(self, sql: str, parameters: tuple[Any, ...], *, fetch: bool) -> Any:
        if not fetch:
            raise TypeError("DirectReads only reads")
        if self._postgres is None:
            return self._sqlite_rows(sql, parameters)
        for attempt in range(2):
            async with self._postgres.held() as conn:
                try:
                    return await conn.fetch(sql, *parameters)
                except Exception as error:
                    if attempt or not (is_driver_error(error) and unavailable(error)):
                        raise
                    # The database restarted or dropped the connection: one try on a new one.
                    conn.terminate()
        return []

    def _sqlite_rows(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        if self._sqlite is None:
            self._sqlite = sqlite3.connect(self._read_only, uri=True)
        return self._sqlite.execute(sql, parameters).fetchall()

    async def close(self) -> None:
        """Close SQLite's connection; on PostgreSQL give the leases back to the engine's pool
        (the engine closes them)."""
        if self._postgres is not None:
            self._postgres.close()
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None


@dataclass(frozen=True)
class _Dialect:
    name: str


class DirectTransaction:
    """One transaction of DirectWrites (or one statement, committed on its own): `prepared(stmt)`
    runs in it as in an AsyncConnection's, and so does `directory.apply` for a plan of one
    user."""

    def __init__(self, conn: "asyncpg.Connection | sqlite3.Connection") -> None:
        self._conn = conn
        self.dialect = _Dialect("sqlite" if isinstance(conn, sqlite3.Connection) else "asyncpg")

    async def run(self, sql: str, parameters: tuple[Any, ...], *, fetch: bool) -> Any:
        conn = self._conn
        if isinstance(conn, sqlite3.Connection):
            cursor = conn.execute(sql, parameters)
            return cursor.fetchall() if fetch else cursor.rowcount
        if fetch:
            return await conn.fetch(sql, *parameters)
        return _count(await conn.execute(sql, *parameters))

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
                    raise translated(error, "BEGIN IMMEDIATE", ()) from error
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
    straight on the driver. On PostgreSQL each transaction borrows an asyncpg connection from
    the engine's pool for as long as it runs (a write waiting on a row lock holds only its
    own); statements there cost a fraction of what they cost through SQLAlchemy. On SQLite, a
    sqlite3 connection used on the event loop's thread (_SqliteWriter): the whole transaction
    takes a fraction of a millisecond there, where every statement through aiosqlite is a trip
    to its thread and back, and the one writer's turn would last as long as all the trips."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sqlite: _SqliteWriter | None = None
        self._postgres: _Lent | None = None
        if engine.url.get_backend_name() == "sqlite":
            self._sqlite = _SqliteWriter(engine)
        else:
            self._postgres = _Lent.of(engine)
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
        """Close SQLite's connection; on PostgreSQL give the leases back to the engine's pool
        (the engine closes them)."""
        if self._postgres is not None:
            self._postgres.close()
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
