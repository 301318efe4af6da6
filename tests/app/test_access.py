"""The app's sign-in and sessions, and how every channel that ends a user's access ends their
sessions in the same transaction."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from roster import mail
from roster.domain.mode import Mode
from roster.jobs import people
from roster.jobs.dropbox_files import Folders
from roster.jobs.imports import run_import
from roster.jobs.pickup import pickup
from roster.settings import Settings
from roster.store import dropboxes, scim_tokens, sessions, sign_in_codes, tenants
from roster.store.db import writing
from roster.store.schema import sessions as sessions_table
from roster.store.schema import sign_in_codes as codes_table
from roster.web.app import create_app
from tests.factories import csv_bytes, person
from tests.sessions import session_open

ME = "/app/v1/me"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "var", app_sign_in_attempts_per_minute=50)


@pytest.fixture
async def client(engine, settings):
    app = create_app(engine, settings=settings)

    async def mailed(response: httpx.Response) -> None:
        await app.state.code_mail.drained()  # codes are mailed after the answer

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://roster", event_hooks={"response": [mailed]}
    ) as client:
        yield client


def addr(tenant, n: int) -> str:
    """Person n's address in this test's organization (each test has its own)."""
    return f"user{n:06d}@{tenant.slug}.example"


def staff_rows(tenant, numbers) -> list[dict[str, str]]:
    return [person(n, CSV_EMAIL=addr(tenant, n)) for n in numbers]


@pytest.fixture
async def staff(engine, tenant):
    """The organization with ten people (user000000 ... user000009)."""
    data = csv_bytes(staff_rows(tenant, range(10)))
    await run_import(engine, tenant.slug, data, mode=Mode.ADD, channel="cli", actor="t")
    return tenant


def last_code(settings: Settings, email: str) -> str:
    mails = [m for m in mail.outbox(settings) if m["to"] == email]
    assert mails, f"no mail to {email}"
    found = re.search(r"\b(\d{6})\b", mails[-1]["subject"])
    assert found
    return found[1]


async def sign_in(client, settings, email: str) -> dict[str, str]:
    response = await client.post("/app/v1/sign-in/code", json={"email": email})
    assert response.status_code == 202
    code = last_code(settings, email)
    response = await client.post("/app/v1/sign-in/token", json={"email": email, "code": code})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_a_user_signs_in_with_a_mailed_code_and_sees_their_profile(client, settings, staff):
    tokens = await sign_in(client, settings, addr(staff, 3))
    me = await client.get(ME, headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json()["username"] == "user000003" and me.json()["organization"] == staff.slug
    assert me.json()["first_aider"] is False and "surname" in me.json()


async def test_the_answer_is_the_same_for_an_unknown_address(client, settings, staff):
    known = await client.post("/app/v1/sign-in/code", json={"email": addr(staff, 1)})
    unknown = await client.post("/app/v1/sign-in/code", json={"email": "nobody@example.com"})
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert [m["to"] for m in mail.outbox(settings)] == [addr(staff, 1)]


async def test_a_code_works_once_and_only_while_fresh(client, settings, staff, engine):
    email = addr(staff, 2)
    await client.post("/app/v1/sign-in/code", json={"email": email})
    code = last_code(settings, email)
    wrong = "000000" if code != "000000" else "111111"
    assert (
        await client.post("/app/v1/sign-in/token", json={"email": email, "code": wrong})
    ).status_code == 401
    assert (
        await client.post("/app/v1/sign-in/token", json={"email": email, "code": code})
    ).status_code == 200
    assert (
        await client.post("/app/v1/sign-in/token", json={"email": email, "code": code})
    ).status_code == 401
    await client.post("/app/v1/sign-in/code", json={"email": email})
    fresh = last_code(settings, email)
    async with writing(engine) as conn:
        await conn.execute(codes_table.update().values(expires_at=sa.func.current_timestamp()))
    expired = await client.post("/app/v1/sign-in/token", json={"email": email, "code": fresh})
    assert expired.status_code == 401


async def test_guessing_codes_is_stopped(client, settings, staff):
    email = addr(staff, 4)
    await client.post("/app/v1/sign-in/code", json={"email": email})
    code = last_code(settings, email)
    guesses = [f"{n:06d}" for n in range(20) if f"{n:06d}" != code][:5]
    for guess in guesses:
        await client.post("/app/v1/sign-in/token", json={"email": email, "code": guess})
    # Five wrong tries: the code no longer works, even when right.
    late = await client.post("/app/v1/sign-in/token", json={"email": email, "code": code})
    assert late.status_code == 401


async def test_requests_are_rate_limited(engine, staff, tmp_path):
    settings = Settings(data_dir=tmp_path / "v", app_sign_in_attempts_per_minute=3)
    transport = httpx.ASGITransport(app=create_app(engine, settings=settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
        responses = [
            await client.post("/app/v1/sign-in/token", json={"email": "a@b.nl", "code": "1"})
            for _ in range(5)
        ]
    answers = [r.status_code for r in responses]
    assert answers[:3] == [401] * 3 and answers[3:] == [429, 429]
    assert responses[-1].headers["retry-after"] == "60"


async def test_refresh_replaces_both_tokens(client, settings, staff):
    tokens = await sign_in(client, settings, addr(staff, 5))
    renewed = await client.post(
        "/app/v1/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert renewed.status_code == 200
    fresh = renewed.json()
    assert (await client.get(ME, headers=bearer(fresh))).status_code == 200
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 401
    again = await client.post(
        "/app/v1/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert again.status_code == 401


async def test_sign_out_ends_the_session(client, settings, staff):
    tokens = await sign_in(client, settings, addr(staff, 6))
    assert (await client.post("/app/v1/sign-out", headers=bearer(tokens))).status_code == 204
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 401
    refused = await client.post(
        "/app/v1/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refused.status_code == 401


async def test_inactive_users_get_no_code(client, settings, staff, engine):
    async with engine.connect() as conn:
        from roster.store import directory_reads

        uid = await directory_reads.user_id_of(conn, staff.id, "user000007")
    await people.change(engine, staff.id, uid, {"active": False}, channel="console", actor="t")
    await client.post("/app/v1/sign-in/code", json={"email": addr(staff, 7)})
    assert mail.outbox(settings) == []


async def test_one_address_in_two_organizations_signs_in_to_each(client, settings, staff, engine):
    async with writing(engine) as conn:
        other = await tenants.create(conn, f"o-{uuid.uuid4().hex[:8]}", "Other")
    same = csv_bytes(staff_rows(staff, [1]))  # the same person works for both
    await run_import(engine, other.slug, same, mode=Mode.ADD, channel="cli", actor="t")
    email = addr(staff, 1)
    await client.post("/app/v1/sign-in/code", json={"email": email})  # no organization: both
    codes = [re.search(r"\d{6}", m["subject"])[0] for m in mail.outbox(settings)]  # type: ignore[index]
    assert len(codes) == 2
    signed_into = set()
    for code in codes:
        answer = await client.post("/app/v1/sign-in/token", json={"email": email, "code": code})
        me = await client.get(ME, headers=bearer(answer.json()))
        signed_into.add(me.json()["organization"])
    assert signed_into == {staff.slug, other.slug}
    # Naming the organization sends one code, for that organization only.
    await client.post("/app/v1/sign-in/code", json={"email": email, "organization": other.slug})
    assert len(mail.outbox(settings)) == 3


async def _uid(engine, tenant, username):
    from roster.store import directory_reads

    async with engine.connect() as conn:
        return await directory_reads.user_id_of(conn, tenant.id, username)


async def test_every_channel_that_ends_access_ends_the_session_at_once(
    client, settings, staff, engine, tmp_path
):
    signed = {n: await sign_in(client, settings, addr(staff, n)) for n in range(8)}

    async def alive(n: int) -> bool:
        return (await client.get(ME, headers=bearer(signed[n]))).status_code == 200

    # A re-import that changes nothing signs nobody out.
    await run_import(
        engine,
        staff.slug,
        csv_bytes(staff_rows(staff, range(10))),
        mode=Mode.REPLACE,
        channel="cli",
        actor="t",
    )
    assert all([await alive(n) for n in range(8)])
    # CSV replace without user000000; CSV add that changes user000001's e-mail.
    await run_import(
        engine,
        staff.slug,
        csv_bytes(staff_rows(staff, range(1, 10))),
        mode=Mode.REPLACE,
        channel="csv",
        actor="t",
    )
    assert not await alive(0)
    changed = person(1, CSV_EMAIL=f"new.address@{staff.slug}.example")
    await run_import(
        engine, staff.slug, csv_bytes([changed]), mode=Mode.ADD, channel="csv", actor="t"
    )
    assert not await alive(1)
    # The console deactivates user000002.
    await people.change(
        engine,
        staff.id,
        await _uid(engine, staff, "user000002"),
        {"active": False},
        channel="console",
        actor="t",
    )
    assert not await alive(2)
    # An SFTP pickup without user000003.
    folders = Folders(tmp_path / "dropbox")
    folders.prepare(staff.slug)
    async with writing(engine) as conn:
        await dropboxes.enable(conn, staff.id, "UTC")
    (folders.account(staff.slug) / "flexwhere - users.csv").write_bytes(
        csv_bytes([changed, *staff_rows(staff, [*range(4, 10), 2])])
    )
    result = await pickup(engine, folders, staff.slug, trigger="cli", max_bytes=10**6)
    assert result.status == "applied", result.report and result.report.issues
    assert not await alive(3)
    # SCIM: a user the identity provider owns, disabled, and one deleted.
    async with writing(engine) as conn:
        _, token = await scim_tokens.create(conn, staff.id, "entra")
    scim = {"Authorization": f"Bearer {token}"}
    for n in (4, 5):
        uid = await _uid(engine, staff, f"user00000{n}")
        if n == 4:
            patch = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            }
            response = await client.patch(f"/scim/v2/Users/{uid}", json=patch, headers=scim)
        else:
            response = await client.delete(f"/scim/v2/Users/{uid}", headers=scim)
        assert response.status_code in (200, 204), response.text
    assert not await alive(4) and not await alive(5)
    # A username change (console) signs out too; an unrelated change does not.
    await people.change(
        engine,
        staff.id,
        await _uid(engine, staff, "user000006"),
        {"username": "renamed6"},
        channel="console",
        actor="t",
    )
    await people.change(
        engine,
        staff.id,
        await _uid(engine, staff, "user000007"),
        {"department": "Finance"},
        channel="console",
        actor="t",
    )
    assert not await alive(6) and await alive(7)


async def test_an_admin_signs_everyone_out(client, settings, staff, engine):
    tokens = await sign_in(client, settings, addr(staff, 8))
    async with writing(engine) as conn:
        assert await sessions.revoke_all(conn, staff.id, kind="app") >= 1
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 401


async def test_garbage_tokens_are_401(client):
    for header in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"},
                   {"Authorization": "Bearer " + "0" * 32 + ".nope"}):  # fmt: skip
        response = await client.get(ME, headers=header)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


async def test_codes_go_out_through_smtp_when_configured(engine, staff, tmp_path):
    from aiosmtpd.controller import Controller

    from tests.conftest import free_port

    received = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope):
            received.append((envelope.rcpt_tos, envelope.content.decode()))
            return "250 OK"

    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = Settings(
            data_dir=tmp_path / "v",
            smtp_url=f"smtp://127.0.0.1:{port}",
            mail_from="Roster <roster@acme.example>",
        )
        app = create_app(engine, settings=settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
            await client.post("/app/v1/sign-in/code", json={"email": addr(staff, 9)})
        await app.state.code_mail.drained()
    finally:
        controller.stop()
    [(to, content)] = received
    assert to == [addr(staff, 9)] and "From: Roster <roster@acme.example>" in content
    assert re.search(r"Subject: Your sign-in code: \d{6}", content)
    assert mail.outbox(settings) == []  # nothing went to the outbox file


async def test_deactivation_revokes_sessions_and_reactivation_brings_none_back(
    client, settings, staff, engine
):
    tokens = await sign_in(client, settings, addr(staff, 2))
    uid = await _uid(engine, staff, "user000002")
    async with engine.connect() as conn:
        open_sessions = (
            await conn.execute(
                sa.select(sessions_table.c.id).where(
                    sessions_table.c.tenant_id == staff.id,
                    sessions_table.c.user_id == uid,
                    sessions_table.c.revoked_at.is_(None),
                )
            )
        ).all()
    assert len(open_sessions) == 1
    await people.change(engine, staff.id, uid, {"active": False}, channel="console", actor="t")
    # Revoked as such, not only hidden by the token check's filter on active users.
    assert not await session_open(engine, staff, open_sessions[0].id)
    await people.change(engine, staff.id, uid, {"active": True}, channel="console", actor="t")
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 401
    refreshed = await client.post(
        "/app/v1/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401
    # The person signs in anew and gets in.
    again = await sign_in(client, settings, addr(staff, 2))
    assert (await client.get(ME, headers=bearer(again))).status_code == 200


async def test_an_address_gets_five_codes_in_fifteen_minutes(client, settings, staff, monkeypatch):
    """The README's numbers, written out: 5 codes per address per 15 minutes."""
    email = addr(staff, 1)
    start = datetime.now(UTC)
    monkeypatch.setattr(sign_in_codes, "now", lambda: start)
    for _ in range(6):
        assert (await client.post("/app/v1/sign-in/code", json={"email": email})).status_code == 202
    assert len([m for m in mail.outbox(settings) if m["to"] == email]) == 5
    monkeypatch.setattr(sign_in_codes, "now", lambda: start + timedelta(minutes=14, seconds=59))
    await client.post("/app/v1/sign-in/code", json={"email": email})
    assert len([m for m in mail.outbox(settings) if m["to"] == email]) == 5
    monkeypatch.setattr(sign_in_codes, "now", lambda: start + timedelta(minutes=15, seconds=1))
    await client.post("/app/v1/sign-in/code", json={"email": email})
    assert len([m for m in mail.outbox(settings) if m["to"] == email]) == 6


async def test_a_code_survives_four_wrong_tries_and_not_five(client, settings, staff):
    email = addr(staff, 9)
    await client.post("/app/v1/sign-in/code", json={"email": email})
    code = last_code(settings, email)
    wrong = [f"{n:06d}" for n in range(20) if f"{n:06d}" != code]
    for guess in wrong[:4]:
        await client.post("/app/v1/sign-in/token", json={"email": email, "code": guess})
    right = await client.post("/app/v1/sign-in/token", json={"email": email, "code": code})
    assert right.status_code == 200
