"""PostgreSQL's COPY: many rows into one table in the caller's transaction, streamed."""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.store.db import is_driver_error
from roster.store.prepared import in_transaction, translated


async def copy_rows(
    conn: AsyncConnection,
    table: sa.Table,
    names: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    step: Callable[[int], None],
    every: int,
) -> None:
    """COPY `rows` (each naming at least `names`; columns left out take their defaults) into
    `table` on the transaction's own asyncpg connection, in asyncpg's binary format, as they are
    made; `step(n)` after every `every` rows and once for the rest. Values pass through the
    column types' processors, as they would in an INSERT (JSON is serialized by its type). A
    unique index's refusal is SQLAlchemy's IntegrityError, as on every other write path."""
    dialect = conn.dialect
    processors = [
        (index, processor)
        for index, name in enumerate(names)
        if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]

    def records() -> Iterator[list[Any]]:
        count = 0
        for count, row in enumerate(rows, 1):
            record = [row[name] for name in names]
            for index, process in processors:
                if record[index] is not None:
                    record[index] = process(record[index])
            yield record
            if count % every == 0:
                step(every)
        if count % every:
            step(count % every)

    driver = await in_transaction(conn)
    try:
        await driver.copy_records_to_table(table.name, records=records(), columns=list(names))
    except Exception as error:
        if not is_driver_error(error):
            raise
        statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
        raise translated(error, statement, None) from error
