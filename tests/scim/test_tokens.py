"""SCIM tokens: printed once, stored hashed, revocable, tied to one organization."""

import asyncio
import hashlib
import json
import uuid

import sqlalchemy as sa
from typer.testing import CliRunner

from roster.cli import app
from roster.store import scim_tokens
from roster.store.db import create_engine
from roster.store.schema import scim_tokens as table

runner = CliRunner()


def roster(*args: str):
    return runner.invoke(app, list(args))


async def authenticate(url: str, presented: str):
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await scim_tokens.authenticate(conn, presented)
    finally:
        await engine.dispose()


async def stored_hashes(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.select(table.c.secret_hash))).scalars())
    finally:
        await engine.dispose()


def test_token_lifecycle(cli_env, database_url):
    slug = f"s-{uuid.uuid4().hex[:8]}"
    assert roster("tenant", "create", slug, "--name", "SCIM org").exit_code == 0
    created = roster("scim", "token", "create", "--tenant", slug, "--name", "entra-id")
    assert created.exit_code == 0
    token = created.stdout.strip()
    assert token.startswith("scim_") and "\n" not in token

    listed = json.loads(roster("scim", "token", "list", "--tenant", slug, "--json").stdout)
    assert [(t["name"], t["revoked"]) for t in listed] == [("entra-id", False)]
    assert token not in roster("scim", "token", "list", "--tenant", slug).stdout

    import asyncio

    found = asyncio.run(authenticate(database_url, token))
    assert found is not None and found.name == "entra-id"
    hashes = asyncio.run(stored_hashes(database_url))
    assert token.split("_", 2)[2] not in hashes
    assert hashlib.sha256(token.split("_", 2)[2].encode()).hexdigest() in hashes

    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), "", "Bearer x", token + "x"):
        assert asyncio.run(authenticate(database_url, wrong)) is None

    revoked = roster("scim", "token", "revoke", "--tenant", slug, listed[0]["id"])
    assert revoked.exit_code == 0
    assert asyncio.run(authenticate(database_url, token)) is None
    assert roster("scim", "token", "revoke", "--tenant", slug, listed[0]["id"]).exit_code == 1


def test_token_of_one_organization_cannot_be_revoked_through_another(cli_env):
    first, second = (f"s-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for slug in (first, second):
        assert roster("tenant", "create", slug, "--name", slug).exit_code == 0
    roster("scim", "token", "create", "--tenant", first, "--name", "okta")
    (token,) = json.loads(roster("scim", "token", "list", "--tenant", first, "--json").stdout)
    assert roster("scim", "token", "revoke", "--tenant", second, token["id"]).exit_code == 1
    assert json.loads(roster("scim", "token", "list", "--tenant", second, "--json").stdout) == []


async def test_a_token_is_verified_once_however_many_requests_ask_at_once(scim, monkeypatch):
    calls = []
    real = scim_tokens.authenticate

    async def counted(conn, presented):
        calls.append(presented)
        await asyncio.sleep(0.05)  # a slow database: every request arrives meanwhile
        return await real(conn, presented)

    monkeypatch.setattr(scim_tokens, "authenticate", counted)
    answers = await asyncio.gather(*(scim.get("/Users", params={"count": 0}) for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert len(calls) == 1
    wrong = [scim.get("/Users", headers={"Authorization": "Bearer scim_x"}) for _ in range(3)]
    assert [a.status_code for a in await asyncio.gather(*wrong)] == [401] * 3
    assert len(calls) == 2  # asked at once: verified once
    again = await scim.get("/Users", headers={"Authorization": "Bearer scim_x"})
    assert again.status_code == 401 and len(calls) == 3  # a failed verification is never kept
