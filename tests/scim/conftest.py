"""The SCIM client fixture: a fresh organization and its token, over the ASGI app."""

import uuid

import httpx
import pytest

from roster.store import scim_tokens, tenants
from roster.store.db import writing
from roster.web.app import create_app


@pytest.fixture
async def scim(engine):
    """A client holding a fresh organization's token."""
    async with writing(engine) as conn:
        tenant = await tenants.create(conn, f"s-{uuid.uuid4().hex[:10]}", "SCIM org")
        _, token = await scim_tokens.create(conn, tenant.id, "entra-id")
    app = create_app(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://roster/scim/v2",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        client.tenant = tenant  # type: ignore[attr-defined]
        client.app = app  # type: ignore[attr-defined]
        yield client
    # The transport runs no lifespan: the app's log is written and its own connections are
    # closed here.
    await app.state.provisioning_log.close()
    await app.state.direct_reads.close()
    await app.state.direct_writes.close()
