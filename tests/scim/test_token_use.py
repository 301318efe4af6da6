"""A token's last use is recorded at most once a minute, off the request's path, and shown by
`roster scim token list` and the console's integrations page."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx

from roster.domain.passwords import hash_password
from roster.jobs import people
from roster.store import scim_tokens, sessions
from roster.store.db import writing
from roster.web.console.common import COOKIE
from roster.web.scim.common import token_cache
from tests.factories import person
from tests.scim.test_tokens import roster

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


async def last_used(engine, tenant):
    async with engine.connect() as conn:
        (token,) = await scim_tokens.listed(conn, tenant.id)
    return token.last_used_at


async def test_many_requests_write_the_last_use_once_a_minute(scim, engine, monkeypatch, cli_env):
    app = scim.app
    app.state.scim_tokens = token_cache(0)  # every request verifies its token anew
    clock = [START]
    monkeypatch.setattr(scim_tokens, "now", lambda: clock[0])
    real, writes = scim_tokens.record_use, []

    async def counted(conn, token):
        writes.append(await real(conn, token))
        return writes[-1]

    monkeypatch.setattr(scim_tokens, "record_use", counted)

    async def requests(count: int) -> None:
        for _ in range(count):
            assert (await scim.get("/Users", params={"count": 0})).status_code == 200
            await asyncio.gather(*app.state.scim_token_uses)  # the writes off the path

    assert await last_used(engine, scim.tenant) is None
    await requests(20)
    assert writes == [True] and await last_used(engine, scim.tenant) == START
    clock[0] = START + timedelta(seconds=59)
    await requests(20)
    assert writes == [True] and await last_used(engine, scim.tenant) == START
    clock[0] = START + timedelta(seconds=61)
    await requests(20)
    assert writes == [True, True]
    assert await last_used(engine, scim.tenant) == START + timedelta(seconds=61)

    # Shown by the CLI and on the console's integrations page.
    slug = scim.tenant.slug
    listed = await asyncio.to_thread(roster, "scim", "token", "list", "--tenant", slug, "--json")
    assert json.loads(listed.stdout)[0]["last_used_at"] == "2026-03-02T09:31:01+00:00"
    table = await asyncio.to_thread(roster, "scim", "token", "list", "--tenant", slug)
    assert "2026-03-02 09:31" in table.stdout
    page = await console_page(engine, scim, "/integrations")
    assert "2026-03-02 09:31" in page  # the organization's zone is UTC


async def console_page(engine, scim, path: str) -> str:
    """A page of the console as the organization's admin sees it."""
    async with console_client(engine, scim) as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.text


@asynccontextmanager
async def console_client(engine, scim) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the console signed in as a new admin of the organization."""
    tenant = scim.tenant
    row = person(900)
    added = await people.add(
        engine,
        tenant.id,
        {"username": row["CSV_USERNAME"], "first_name": "Ann", "surname": "Admin",
         "display_name": "Ann Admin", "email": row["CSV_EMAIL"]},
        channel="cli", actor="t",
    )  # fmt: skip
    assert added.user_id is not None
    hashed = hash_password("a one-time password")  # made an admin, with credentials
    made = await people.set_role(engine, tenant.id, added.user_id, hashed, channel="cli", actor="t")
    assert made.ok, made.issues
    async with writing(engine) as conn:
        _, cookie = await sessions.create(
            conn, tenant.id, added.user_id, "console", timedelta(hours=1)
        )
    transport = httpx.ASGITransport(app=scim.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://roster", cookies={COOKIE: cookie}
    ) as client:
        yield client
