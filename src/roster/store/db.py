"""Engines and migrations."""

import asyncio
import fcntl
import hashlib
import json
import sqlite3
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from functools import cache
from pathlib import Path
from tempfile import gettempdir
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4
from weakref import WeakKeyDictionary

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from roster.files import private_dir, private_file, private_opener
from roster.settings import Settings, async_url

MIGRATIONS = Path(__file__).parent / "migrations"

if TYPE_CHECKING:
    from alembic.config import Config

# How long a writer waits for SQLite's one write lock before it gives up; read each time an
# engine or a writer starts waiting.
SQLITE_BUSY_SECONDS = 30.0
# What every channel tells a client to wait before trying again when the database is unavailable.
RETRY_AFTER_SECONDS = 10
# How long a task waits for one of the process's PostgreSQL connections when all are in use
# (ROSTER_DATABASE_CONNECTIONS) before the database counts as unavailable: as long as a SQLite
# writer waits for the write lock. Read when an engine is made.
CONNECTION_WAIT_SECONDS = 30.0


class Unavailable(Exception):
    """The database cannot serve this now: it is unreachable, the connection was lost, or
    SQLite's write lock stayed taken beyond SQLITE_BUSY_SECONDS (another process's long
    import). Nothing was written; the same request may well succeed later. The message names
    the driver's error, never the statement's values."""


# SQLSTATE classes and codes that say "not now" rather than "never": connection exceptions,
# insufficient resources, operator intervention (shutdown, cannot connect now, cancelled),
# lock not available.
_TRANSIENT_SQLSTATES = ("08", "53", "57", "55P03")


def driver_error(error: BaseException) -> BaseException:
    """The driver's own error behind SQLAlchemy's wrappers: a DBAPIError's `orig`, and the
    asyncpg error behind the one SQLAlchemy's asyncpg adapter raises in its place."""
    if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
        error = error.orig
    if isinstance(error, sa.exc.EmulatedDBAPIException) and error.orig is not None:
        error = error.orig
    return error


def _asyncpg_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """asyncpg's server errors and its errors of a connection lost or never had. asyncpg is
    loaded with a PostgreSQL engine, so an error can be asyncpg's only once it is loaded (and
    SQLite, which never loads it, need not import it to ask)."""
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return (), ()
    connection = (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)
    return (asyncpg.PostgresError,), connection


def is_driver_error(error: BaseException) -> bool:
    """Whether an error comes from a database driver (asyncpg, sqlite3, or SQLAlchemy's asyncpg
    adapter) or from the network under it."""
    server, connection = _asyncpg_errors()
    drivers = (sqlite3.Error, sa.exc.EmulatedDBAPIException, OSError, *server, *connection)
    return isinstance(error, drivers)


def unavailable(error: BaseException) -> bool:
    """Whether a driver's error means the database is unavailable (see Unavailable): the one
    classification every part of the store applies to the errors of every driver."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    error = driver_error(error)
    if isinstance(error, sqlite3.OperationalError):
        return error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    server, connection = _asyncpg_errors()
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(error, server) and sqlstate:
        return str(sqlstate).startswith(_TRANSIENT_SQLSTATES)
    # No SQLSTATE: the client lost or never had its connection (asyncpg's InternalClientError
    # is a connection a failure left mid-operation).
    return isinstance(error, (*connection, OSError, TimeoutError))


def unavailable_error(error: BaseException) -> Unavailable:
    """The Unavailable a driver's error stands for (raise it `from error`)."""
    cause = driver_error(error)
    first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return Unavailable(f"the database is unavailable ({type(cause).__name__}: {first_line})")


_UNIQUE_SQLITE = (sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)


def unique_clash(error: BaseException) -> bool:
    """Whether a driver's error is a unique index refusing a value (not another constraint)."""
    error = driver_error(error)
    if isinstance(error, sqlite3.IntegrityError):
        return error.sqlite_errorcode in _UNIQUE_SQLITE
    return getattr(error, "sqlstate", None) == "23505"


class Clash(Exception):
    """A value another row of the organization holds under a uniqueness rule. `field` names it
    ("username", "email", a group's "display_name") when the store found the holder; None when
    a unique index refused the write itself (another writer took the value between the check
    and the write)."""

    def __init__(self, field: str | None = None) -> None:
        super().__init__(f"{field or 'a value'} is taken")
        self.field = field


@contextmanager
def typed_clashes() -> Iterator[None]:
    """Inside, a unique index's refusal is raised as Clash: the one place a driver's integrity
    error becomes the store's typed one (any other constraint's refusal stays a fault)."""
    try:
        yield
    except sa.exc.IntegrityError as error:
        if not unique_clash(error):
            raise
        raise Clash() from error


class Unstorable(ValueError):
    """A value the database cannot hold or compare: text with NUL, which PostgreSQL refuses.
    No stored text holds a control character, so the edges answer it as a refused value."""


def unstorable(error: BaseException) -> bool:
    """Whether a driver refused a value itself (see Unstorable)."""
    error = driver_error(error)
    # Character not in repertoire, untranslatable character (a NUL in text or JSON).
    server, _ = _asyncpg_errors()
    return isinstance(error, server) and getattr(error, "sqlstate", None) in ("22021", "22P05")


def typed_error(error: BaseException) -> Exception | None:
    """The store's typed error a driver's error stands for (raise it `from error`), if any."""
    if unavailable(error):
        return unavailable_error(error)
    if unstorable(error):
        return Unstorable("a value holds a character the database cannot store (NUL)")
    return None


def _raise_typed(context: sa.engine.ExceptionContext) -> None:
    # Every statement and connection of an engine: a driver error that means "unavailable" or
    # "unstorable" is raised as the store's (after SQLAlchemy has invalidated a broken
    # connection).
    typed = typed_error(context.original_exception)
    if typed is not None:
        raise typed


def _engine(url: str | sa.URL, **options: Any) -> AsyncEngine:
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "handle_error", _raise_typed)
    return engine


def json_text(value: Any) -> str:
    """The text of a JSON column on SQLite, by orjson (a tenth of the standard library's time:
    each imported user's audit event holds one), or by the standard library for the values
    orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def create_engine(url: str, connections: int | None = None) -> AsyncEngine:
    """The engine of a database URL. On PostgreSQL (asyncpg) its pool holds every connection
    the process opens, `connections` at most (ROSTER_DATABASE_CONNECTIONS): read_engine and
    store.prepared's DirectReads and DirectWrites take theirs from it too."""
    url = async_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            # Made before SQLite opens it (which would make it 0644), and its -wal and -shm
            # files take its mode.
            private_file(Path(path))
        engine = _engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_SECONDS},
            json_serializer=json_text,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    if connections is None:
        connections = Settings.model_fields["database_connections"].default
    # No pool_pre_ping: it costs a round trip on every checkout. A connection a database restart
    # broke fails the one request that uses it, and SQLAlchemy then renews the whole pool. No
    # overflow: the pool's size is the process's budget, and a task beyond it waits its turn.
    engine = _engine(
        url,
        poolclass=_Budget,
        pool_size=connections,
        max_overflow=0,
        pool_timeout=CONNECTION_WAIT_SECONDS,
        connect_args={"server_settings": {"application_name": "roster"}},
    )
    event.listen(engine.sync_engine, "connect", _asyncpg_uuids)
    return engine


class _Budget(AsyncAdaptedQueuePool):
    """The pool of a PostgreSQL engine: a checkout that waited CONNECTION_WAIT_SECONDS for a
    free connection, or one that could not connect now, raises Unavailable, as a statement
    the database cannot serve does (so SCIM answers 503 with Retry-After)."""

    def connect(self) -> Any:
        try:
            return super().connect()
        except sa.exc.TimeoutError:
            raise Unavailable(
                f"the database is unavailable (all {self.size()} connections stayed busy"
                f" for {self.timeout():.0f} s)"
            ) from None
        except Exception as error:
            if unavailable(error):
                raise unavailable_error(error) from error
            raise


def _asyncpg_uuids(dbapi_connection: Any, _record: Any) -> None:
    # Ids arrive as uuid.UUID, as on SQLite (asyncpg's own UUID is a class of its own); binary,
    # as COPY sends them.
    async def codec(conn: Any) -> None:
        await conn.set_type_codec(
            "uuid", encoder=_uuid_bytes, decoder=_uuid, schema="pg_catalog", format="binary"
        )

    dbapi_connection.run_async(codec)


def _uuid_bytes(value: UUID | str) -> bytes:
    return (value if isinstance(value, UUID) else UUID(value)).bytes


def _uuid(data: bytes) -> UUID:
    return UUID(bytes=data)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE below takes effect.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A writing transaction takes the write lock at its start, so a read-then-write never fails
    # on upgrade; readers stay deferred and keep reading during a long import (WAL).
    options = connection.get_execution_options()
    if options.get("roster_read"):  # see read_engine
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get("roster_write") else "BEGIN")


def sqlite_file(engine: AsyncEngine) -> str:
    """The absolute path of a SQLite engine's database file, for connections of Roster's own
    beside the engine's (store.prepared), which must open the very same file."""
    url = engine.url
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("uri"):
        raise ValueError(f"a SQLite database must be a file path: {url}")
    return str(Path(database).resolve())


# A SQLite connection's page cache (KiB): SQLite's default, and while it writes many rows. An
# import revisits index pages all over the username and e-mail indexes; in the default cache
# they spill to the WAL and are read back. Pages are taken only as they are used.
SQLITE_CACHE_KIB = 2000
SQLITE_BULK_CACHE_KIB = 16 * 1024


@asynccontextmanager
async def writing(
    engine: AsyncEngine, *, many_rows: bool = False
) -> AsyncIterator[AsyncConnection]:
    """One transaction that writes: all of it commits, or none of it. `many_rows` (an import):
    on SQLite the connection keeps a larger page cache for the transaction's length."""
    if engine.dialect.name != "sqlite":
        async with engine.connect() as connection, connection.begin():
            yield connection
        return
    async with writer_turn(engine), engine.connect() as connection:
        await connection.execution_options(roster_write=True)  # see _sqlite_begin
        if not many_rows:
            async with connection.begin():
                yield connection
            return
        # On the driver's connection: SQLAlchemy would begin a transaction for a PRAGMA.
        driver: Any = (await connection.get_raw_connection()).driver_connection
        await driver.execute(f"PRAGMA cache_size=-{SQLITE_BULK_CACHE_KIB}")
        try:
            async with connection.begin():
                yield connection
        finally:
            await driver.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")


_writer_turns: "WeakKeyDictionary[AsyncEngine, WeakKeyDictionary[Any, asyncio.Lock]]" = (
    WeakKeyDictionary()
)


@asynccontextmanager
async def writer_turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """SQLite has one writer at a time. Writers of one process wait their turn here, first
    come first served; left to SQLite's busy handler, which sleeps and retries with growing
    pauses, 50 concurrent SCIM creates took up to a second each (p99). Writers of other
    processes (a CLI import) still meet the busy handler. A writer that waits longer than
    SQLITE_BUSY_SECONDS fails as SQLite's busy handler fails it. One lock per event loop, as
    asyncio's locks belong to one."""
    turns = _writer_turns.setdefault(engine, WeakKeyDictionary())
    loop = asyncio.get_running_loop()
    turn = turns.get(loop)
    if turn is None:
        turn = turns[loop] = asyncio.Lock()
    try:
        async with asyncio.timeout(SQLITE_BUSY_SECONDS):
            await turn.acquire()
    except TimeoutError:
        raise Unavailable("the database is unavailable (waiting for the write lock)") from None
    try:
        yield
    finally:
        turn.release()


_readers: "WeakKeyDictionary[AsyncEngine, AsyncEngine]" = WeakKeyDictionary()


def read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine for reads that need no transaction of their own; one per engine, on the
    engine's pool. On PostgreSQL its connections run each statement on its own (autocommit),
    which spares a BEGIN and a ROLLBACK round trip a request (under READ COMMITTED every
    statement takes a fresh snapshot anyway); asyncpg switches a connection to autocommit and
    back without a round trip. On SQLite likewise each statement stands alone (its own
    snapshot): no BEGIN (see _sqlite_begin), each statement a transaction of its own as the
    driver runs it, which spares a round trip to its thread."""
    reader = _readers.get(engine)
    if reader is None:
        if engine.dialect.name == "sqlite":
            reader = engine.execution_options(roster_read=True)
        else:
            reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        _readers[engine] = reader
    return reader


async def dispose(engine: AsyncEngine) -> None:
    """Close the engine's connections (its read engine's are the same pool's)."""
    await engine.dispose()


def alembic_config(url: str) -> "Config":
    from alembic.config import Config  # where the schema changes only: costly to import

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


def _upgrade(connection: sa.Connection, url: str) -> None:
    from alembic import command

    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@cache
def newest_revision() -> str:
    """The revision of the newest migration (their files are named by it: 0013_….py)."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The schema's revision, or None for a database without one."""
    try:
        async with engine.connect() as connection:
            query = sa.text("SELECT version_num FROM alembic_version")
            return (await connection.execute(query)).scalar()
    except (sa.exc.ProgrammingError, sa.exc.OperationalError):  # no such table (yet)
        return None


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe to run from several processes at once.
    A current schema costs one query (every command of the CLI checks it)."""
    if await schema_revision(engine) == newest_revision():
        return
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Replicas starting together must not run the same migration twice.
            await connection.execute(sa.text("SELECT pg_advisory_lock(7261001)"))
            await connection.commit()
        try:
            await connection.run_sync(_upgrade, str(engine.url))
            await connection.commit()
        finally:
            if engine.dialect.name == "postgresql":
                await connection.execute(sa.text("SELECT pg_advisory_unlock(7261001)"))
                await connection.commit()


async def lock_tenant(connection: AsyncConnection, tenant_id: UUID) -> None:
    """Serialize writers of one organization until the transaction ends (replicas included).
    SQLite needs nothing: a writing transaction there already holds the database's write lock."""
    if connection.dialect.name == "postgresql":
        lock_key = int.from_bytes(tenant_id.bytes[:8], "big", signed=True)
        await connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})


@asynccontextmanager
async def exclusive(engine: AsyncEngine, name: str) -> AsyncIterator[bool]:
    """Try to become the one process (of all replicas) doing the job `name`; yields whether this
    one is. PostgreSQL holds an advisory lock on a connection of its own for as long as the job
    runs; SQLite, served from one machine, holds a file lock beside the database file."""
    if engine.dialect.name == "postgresql":
        objid = zlib.crc32(name.encode()) - 2**31  # the lock's key must fit a signed int4
        async with engine.connect() as connection:
            got = (
                await connection.execute(
                    sa.text("SELECT pg_try_advisory_lock(7261002, :o)"), {"o": objid}
                )
            ).scalar_one()
            await connection.commit()
            try:
                yield bool(got)
            finally:
                if got:
                    await connection.execute(
                        sa.text("SELECT pg_advisory_unlock(7261002, :o)"), {"o": objid}
                    )
                    await connection.commit()
        return
    database = engine.url.database
    folder = Path(database).parent if database and database != ":memory:" else Path(gettempdir())
    folder = private_dir(folder / "locks")
    lock_file = folder / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.lock"
    with open(lock_file, "a", opener=private_opener) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def healthy(connection: AsyncConnection) -> bool:
    await connection.execute(sa.text("SELECT 1"))
    return True


async def refresh_statistics(engine: AsyncEngine) -> None:
    """Let the query planner see the users a large import brought: until then PostgreSQL may
    look up a username through the wrong index and scan the organization. SQLite samples
    about a thousand rows an index, as PostgreSQL samples a table, rather than reading every
    entry of every index of the table."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            await connection.execute(sa.text("PRAGMA analysis_limit = 1000"))
        await connection.execute(sa.text("ANALYZE users"))
        await connection.commit()


@contextmanager
def scratch_postgres(url: str, prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own for a test run or a benchmark, dropped afterwards."""
    plain = sa.engine.make_url(url).set(drivername="postgresql")
    name = f"{prefix}_{uuid4().hex[:12]}"
    _administer(plain, f'CREATE DATABASE "{name}"')
    try:
        yield plain.set(database=name).render_as_string(hide_password=False)
    finally:
        _administer(plain, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _administer(url: sa.URL, statement: str) -> None:
    # One statement outside a transaction, on a thread and event loop of its own: callers may
    # be inside an event loop already.
    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, run()).result()
