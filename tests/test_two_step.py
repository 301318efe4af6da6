"""Turning an admin's two-step sign-in on takes the key the server offered, a code and the
password: an open (or stolen) session alone cannot enrol an authenticator. The operator can turn
it off from the command line. Without a browser: outside tests/console, whose sync Playwright
owns the event loop."""

import asyncio
import re
import uuid
from datetime import timedelta

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from roster.cli import app as cli
from roster.domain.fields import FIELDS
from roster.domain.passwords import hash_password
from roster.jobs import people
from roster.settings import Settings
from roster.store import admins, sessions, tenants
from roster.store.db import create_engine, dispose, writing
from roster.store.schema import audit_events
from roster.web.app import create_app
from roster.web.console.common import COOKIE, csrf_token
from tests.factories import person

PASSWORD = "correct horse battery staple"
HASH = hash_password(PASSWORD)
BY = {"channel": "cli", "actor": "test"}


async def make_admin(engine, tenant) -> uuid.UUID:
    row = person(1, CSV_EMAIL=f"fm@{tenant.slug}.example")
    raw = {f.name: row[f.column] for f in FIELDS}
    outcome = await people.add(engine, tenant.id, raw, role="admin", **BY)
    assert outcome.ok and outcome.user_id, outcome.issues
    async with writing(engine) as conn:
        await admins.set_password(conn, tenant.id, outcome.user_id, HASH)
    return outcome.user_id


async def admin_of(engine, tenant, user_id) -> admins.Admin:
    async with engine.connect() as conn:
        found = await admins.get(conn, tenant.id, user_id)
    assert found is not None
    return found


@pytest.fixture
async def stolen(engine, tenant, tmp_path):
    """A console client holding an admin's session cookie and its CSRF token, as someone who
    stole the session would: all they lack is the password."""
    user_id = await make_admin(engine, tenant)
    async with writing(engine) as conn:
        _, token = await sessions.create(conn, tenant.id, user_id, "console", timedelta(hours=1))
    app = create_app(engine, settings=Settings(data_dir=tmp_path / "var"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
        client.cookies.set(COOKIE, token)
        client.headers["accept"] = "text/html"
        yield client, csrf_token(token), user_id


def offered(page: httpx.Response) -> str:
    found = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text)
    assert found, page.text
    return found[1]


async def test_a_stolen_session_cannot_turn_two_step_sign_in_on(engine, tenant, stolen):
    client, csrf, user_id = stolen
    secret = offered(await client.get("/account"))
    for password in ("", "not the password at all"):
        code = pyotp.TOTP(secret).now()
        answer = await client.post(
            "/account/2fa", data={"csrf": csrf, "code": code, "current": password}
        )
        assert answer.status_code == 400
        assert "password" in answer.text
        assert (await admin_of(engine, tenant, user_id)).totp_secret is None


async def test_a_key_sent_by_the_browser_is_never_the_one_turned_on(engine, tenant, stolen):
    client, csrf, user_id = stolen
    secret = offered(await client.get("/account"))
    assert offered(await client.get("/account")) == secret  # kept on the server
    attacker = pyotp.random_base32()
    code = pyotp.TOTP(attacker).now()
    sent = {"csrf": csrf, "code": code, "current": PASSWORD}
    answer = await client.post("/account/2fa", data=sent | {"secret": attacker})
    assert answer.status_code == 400 and "Key:" in answer.text
    if code != pyotp.TOTP(secret).now():  # one in a million they share the code
        answer = await client.post("/account/2fa", data=sent)
        assert answer.status_code == 400 and "does not match" in answer.text
    assert (await admin_of(engine, tenant, user_id)).totp_secret is None
    # The key the server offered, its code and the password turn it on.
    sent["code"] = pyotp.TOTP(secret).now()
    answer = await client.post("/account/2fa", data=sent)
    assert answer.status_code == 303, answer.text
    assert (await admin_of(engine, tenant, user_id)).totp_secret == secret
    async with engine.connect() as conn:
        events = await conn.execute(
            sa.select(audit_events.c.action, audit_events.c.channel).where(
                audit_events.c.tenant_id == tenant.id, audit_events.c.user_id == user_id
            )
        )
        assert ("two_step_on", "console") in events.all()


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("secret", "", "Key:"),
        ("secret", "!!!!", "Key:"),
        ("code", "", "Code from the app:"),
        ("code", "abcdef", "Code from the app:"),
        ("code", "12345\x00", "Code from the app:"),
        ("code", "1" * 10_000, "Code from the app:"),
        ("current", "", "Your password:"),
    ],
)
async def test_malformed_values_are_a_400_naming_the_field(
    engine, tenant, stolen, field, value, named
):
    client, csrf, user_id = stolen
    secret = offered(await client.get("/account"))
    sent = {"csrf": csrf, "code": pyotp.TOTP(secret).now(), "current": PASSWORD}
    answer = await client.post("/account/2fa", data=sent | {field: value})
    assert answer.status_code == 400
    assert named in answer.text
    assert (await admin_of(engine, tenant, user_id)).totp_secret is None


async def test_password_guesses_on_the_account_page_are_limited(engine, tenant, stolen):
    client, csrf, user_id = stolen
    limit = Settings().console_failed_logins_per_minute  # as the stolen session's app has it
    secret = offered(await client.get("/account"))
    sent = {"csrf": csrf, "code": pyotp.TOTP(secret).now()}
    for _ in range(limit):
        answer = await client.post("/account/2fa", data=sent | {"current": "a guess, wrong"})
        assert "password is not right" in answer.text
    answer = await client.post("/account/2fa", data=sent | {"current": PASSWORD})
    assert answer.status_code == 400 and "Too many tries" in answer.text
    assert (await admin_of(engine, tenant, user_id)).totp_secret is None


# -- the operator's reset ---------------------------------------------------------------------


def test_the_operator_turns_an_admins_two_step_sign_in_off(cli_env, database_url):
    runner = CliRunner()
    slug, email = f"c-{uuid.uuid4().hex[:8]}", "fm@example.com"
    assert runner.invoke(cli, ["tenant", "create", slug, "--name", "Acme"]).exit_code == 0
    made = runner.invoke(
        cli, ["admin", "create", "--tenant", slug, "--email", email, "--first-name", "Fiona",
              "--surname", "Manager"], input=PASSWORD + "\n",
    )  # fmt: skip
    assert made.exit_code == 0, made.output

    async def enrolled() -> tuple[str, str]:
        """Two-step sign-in on, and a console session and an app session open."""
        engine = create_engine(database_url)
        try:
            async with writing(engine) as conn:
                tenant = (await tenants.get(conn, slug)).id
                admin = await admins.by_email(conn, tenant, email)
                assert admin is not None
                await admins.set_totp(conn, admin, pyotp.random_base32(), **BY)
                hour = timedelta(hours=1)
                _, console = await sessions.create(conn, tenant, admin.user_id, "console", hour)
                _, app = await sessions.create(conn, tenant, admin.user_id, "app", hour)
            return console, app
        finally:
            await dispose(engine)

    console_token, app_token = asyncio.run(enrolled())
    reset = runner.invoke(cli, ["admin", "reset-2fa", "--tenant", slug, "--email", email])
    assert reset.exit_code == 0, reset.output
    said = " ".join(reset.output.split())  # as a terminal wraps it
    assert "is off (it was on)" in said and "1 Control Centre session(s) signed out" in said

    async def after() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                tenant = (await tenants.get(conn, slug)).id
                admin = await admins.by_email(conn, tenant, email)
                assert admin is not None and admin.totp_secret is None
                assert await sessions.find(conn, console_token, "console") is None
                assert await sessions.find(conn, app_token, "app") is not None  # the app's stay
                last = (
                    await conn.execute(
                        sa.select(audit_events)
                        .where(audit_events.c.tenant_id == tenant)
                        .order_by(audit_events.c.at.desc())
                        .limit(1)
                    )
                ).one()
                assert (last.action, last.channel, last.user_id) == (
                    "two_step_off", "cli", admin.user_id,
                )  # fmt: skip
                assert last.actor.startswith("cli") and last.after == {"two_step": False}
        finally:
            await dispose(engine)

    asyncio.run(after())
    unknown = runner.invoke(cli, ["admin", "reset-2fa", "--tenant", slug, "--email", "x@y.z"])
    assert unknown.exit_code == 2 and "no active admin" in " ".join(unknown.output.split())
