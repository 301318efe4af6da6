"""`roster sessions` and `roster mail` as an operator types them."""

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from roster.cli import app
from roster.settings import get_settings
from roster.store import tenants
from roster.store.db import create_engine
from roster.store.schema import audit_events
from roster.web.app import create_app
from tests.factories import csv_bytes, person

runner = CliRunner()


def roster(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def org(cli_env, tmp_path):
    slug = f"a-{uuid.uuid4().hex[:8]}"
    assert roster("tenant", "create", slug, "--name", "Acme").exit_code == 0
    path = tmp_path / "users.csv"
    path.write_bytes(csv_bytes([person(1, CSV_EMAIL=f"jan@{slug}.example")]))
    assert roster("import", str(path), "--tenant", slug, "--mode", "add", "-q").exit_code == 0
    return slug


async def _app_call(database_url: str, method: str, path: str, **options):
    engine = create_engine(database_url)
    roster_app = create_app(engine, settings=get_settings())
    transport = httpx.ASGITransport(app=roster_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
        response = await client.request(method, path, **options)
    await roster_app.state.code_mail.drained()  # codes are mailed after the answer
    await engine.dispose()
    return response


async def _audit(database_url: str, slug: str) -> list[tuple[str, str, Any]]:
    """The organization's audit trail, oldest first: (channel, action, after)."""
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        tenant = await tenants.get(conn, slug)
        rows = await conn.execute(
            sa.select(audit_events.c.channel, audit_events.c.action, audit_events.c.after)
            .where(audit_events.c.tenant_id == tenant.id)
            .order_by(audit_events.c.at)
        )
        found = [tuple(row) for row in rows]
    await engine.dispose()
    return found


def app_call(database_url: str, method: str, path: str, **options) -> httpx.Response:
    """One request to the app API (the CLI runs its own event loop, so this test has none)."""
    return asyncio.run(_app_call(database_url, method, path, **options))


def test_sign_in_from_the_outbox_then_list_and_revoke_sessions(org, database_url):
    email = f"jan@{org}.example"
    app_call(database_url, "POST", "/app/v1/sign-in/code", json={"email": email})
    shown = json.loads(roster("mail", "outbox", "--json").stdout)
    assert shown[-1]["to"] == email
    code = shown[-1]["subject"].rsplit(" ", 1)[-1]
    body = {"email": email, "code": code}
    tokens = app_call(database_url, "POST", "/app/v1/sign-in/token", json=body).json()
    listed = roster("sessions", "list", "--tenant", org, "--username", "user000001", "--json")
    assert [s["kind"] for s in json.loads(listed.stdout)] == ["app"]
    result = roster("sessions", "revoke-all", "--tenant", org)
    assert result.exit_code == 0 and "signed out 1 app sessions" in result.output
    assert asyncio.run(_audit(database_url, org))[-1] == ("cli", "signed_out_all", {"sessions": 1})
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert app_call(database_url, "GET", "/app/v1/me", headers=bearer).status_code == 401
    unknown = roster("sessions", "list", "--tenant", org, "--username", "nobody")
    assert unknown.exit_code == 2 and "has no user nobody" in " ".join(unknown.output.split())
