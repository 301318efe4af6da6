"""`roster sso` as an operator types it: the secret from standard input, never shown again."""

import asyncio
import json
import uuid

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from roster.cli import app
from roster.settings import get_settings
from roster.store import sso, tenants
from roster.store.db import create_engine
from roster.store.schema import audit_events, sso_providers

runner = CliRunner()
ISSUER = "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0"


def roster(*args: str, stdin: str | None = None):
    return runner.invoke(app, list(args), input=stdin)


@pytest.fixture
def org(cli_env):
    slug = f"s-{uuid.uuid4().hex[:8]}"
    assert roster("tenant", "create", slug, "--name", "Acme").exit_code == 0
    return slug


async def _stored(database_url: str, slug: str):
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            tenant = await tenants.get(conn, slug)
            row = (
                await conn.execute(
                    sa.select(sso_providers).where(sso_providers.c.tenant_id == tenant.id)
                )
            ).first()
            events = (
                await conn.execute(
                    sa.select(audit_events.c.channel, audit_events.c.action, audit_events.c.after)
                    .where(audit_events.c.tenant_id == tenant.id)
                    .order_by(audit_events.c.at)
                )
            ).all()
            return row, events, await sso.codes_allowed(conn, tenant.id)
    finally:
        await engine.dispose()


def test_set_show_disable(org, database_url):
    options = ["--tenant", org, "--issuer", ISSUER, "--client-id", "app-id"]
    app_uri = "com.example.roster:/signed-in"
    done = roster("sso", "set", *options, "--claim", "preferred_username", "--no-codes",
                  "--redirect-uri", app_uri, stdin="the secret\n")  # fmt: skip
    assert done.exit_code == 0, done.output
    shown = roster("sso", "show", "--tenant", org, "--json")
    assert shown.exit_code == 0
    settings = json.loads(shown.stdout)
    assert settings == settings | {
        "enabled": True, "issuer": ISSUER, "client_id": "app-id", "claim": "preferred_username",
        "codes_allowed": False, "app_redirect_uris": ["com.example.roster:/signed-in"],
        "redirect_url_to_register": f"{get_settings().console_url}/sso/callback/{org}",
    }  # fmt: skip
    assert "the secret" not in shown.stdout
    row, events, codes = asyncio.run(_stored(database_url, org))
    assert "the secret" not in row.client_secret_sealed and not codes
    assert [(c, a) for c, a, _ in events] == [("cli", "sso_configured")]
    assert "the secret" not in json.dumps([after for *_, after in events])

    # An empty secret keeps the one set; a new claim is saved.
    sealed = row.client_secret_sealed
    assert roster("sso", "set", *options, "--claim", "email", stdin="\n").exit_code == 0
    row, _, codes = asyncio.run(_stored(database_url, org))
    assert row.client_secret_sealed == sealed and row.claim == "email" and codes

    assert roster("sso", "disable", "--tenant", org).exit_code == 0
    assert json.loads(roster("sso", "show", "--tenant", org, "--json").stdout)["enabled"] is False
    _, events, codes = asyncio.run(_stored(database_url, org))
    assert events[-1][1] == "sso_disabled" and codes


def test_refusals(org):
    bad = roster("sso", "set", "--tenant", org, "--issuer", "http://idp.example",
                 "--client-id", "x", stdin="s\n")  # fmt: skip
    assert bad.exit_code == 2 and "issuer" in bad.output
    no_secret = roster("sso", "set", "--tenant", org, "--issuer", ISSUER, "--client-id", "x",
                       stdin="\n")  # fmt: skip
    assert no_secret.exit_code == 2 and "client secret" in no_secret.output
    unknown = roster("sso", "show", "--tenant", "no-such-org")
    assert unknown.exit_code == 2
