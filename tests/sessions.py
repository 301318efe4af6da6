"""App sessions as the app-access service creates them, for tests of revocation."""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import sqlalchemy as sa

from roster.store.db import writing
from roster.store.schema import sessions


async def sign_in(engine, tenant, user_id):
    """A session of the app, as the app-access service will create them."""
    session_id = uuid4()
    async with writing(engine) as conn:
        await conn.execute(
            sessions.insert().values(
                tenant_id=tenant.id,
                id=session_id,
                user_id=user_id,
                token_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
                created_at=datetime.now(UTC),
                expires_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
    return session_id


async def session_open(engine, tenant, session_id):
    async with engine.connect() as conn:
        revoked = (
            await conn.execute(
                sa.select(sessions.c.revoked_at).where(
                    sessions.c.tenant_id == tenant.id, sessions.c.id == session_id
                )
            )
        ).scalar_one()
    return revoked is None
