"""The migrations build exactly the schema the code describes, on every database."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from roster.store.schema import metadata


async def test_migrated_schema_matches_the_tables(engine):
    def differences(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []
