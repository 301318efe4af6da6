"""Alembic environment: runs on the connection Roster hands it (see roster.store.db.migrate)."""

from alembic import context

from roster.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    # One transaction a migration: asyncpg keeps a streamed read's cursor open until its
    # transaction ends, and a later migration cannot alter a table a cursor still reads.
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
