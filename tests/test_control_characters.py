"""Control characters (NUL above all, which PostgreSQL refuses in text) in any text a client
sends: a sign-in is refused as a wrong one, a search or filter matches nothing, a SCIM filter
is a 400 invalidFilter; never a 500, and the server keeps answering."""

import html
from datetime import timedelta

import httpx
import pytest

from roster.domain.passwords import hash_password
from roster.jobs import people
from roster.settings import Settings
from roster.store import admins, scim_tokens, sessions
from roster.store.db import writing
from roster.web.app import create_app
from roster.web.appapi import SENT, WRONG_CODE
from roster.web.console.auth import WRONG

PASSWORD = "correct horse battery staple"
HTML = {"Accept": "text/html"}
NUL, CONTROLS = "\x00", ("\x00", "\x01", "\x1b", "\x7f", "\x9b")


@pytest.fixture
async def client(engine, tenant, tmp_path):
    """A client of a server whose organization has an admin (fm@...) and a user (ctrlperson);
    `client.admin` is a console session's cookie, `client.scim` a SCIM token."""
    raw = {"username": "fm", "first_name": "Fi", "surname": "Manager",
           "display_name": "Fi Manager", "email": f"fm@{tenant.slug}.example"}  # fmt: skip
    admin = await people.add(engine, tenant.id, raw, channel="cli", actor="t", role="admin")
    raw = {"username": "ctrlperson", "first_name": "Cy", "surname": "Control",
           "display_name": "Cy Control", "email": f"cy@{tenant.slug}.example"}  # fmt: skip
    await people.add(engine, tenant.id, raw, channel="cli", actor="t")
    assert admin.user_id is not None
    async with writing(engine) as conn:
        await admins.set_password(conn, tenant.id, admin.user_id, hash_password(PASSWORD))
        _, cookie = await sessions.create(
            conn, tenant.id, admin.user_id, "console", timedelta(hours=1)
        )
        _, token = await scim_tokens.create(conn, tenant.id, "entra-id")
    settings = Settings(
        data_dir=tmp_path,
        console_secure_cookies=False,
        app_sign_in_attempts_per_minute=100,
        console_failed_logins_per_minute=100,
    )
    app = create_app(engine, settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
        client.tenant, client.admin, client.scim = tenant, cookie, token  # type: ignore[attr-defined]
        yield client
        assert (await client.get("/healthz")).status_code == 200  # still answering
    await app.state.code_mail.drained()  # codes are mailed after the answers


async def _console_sign_in(client, organization: str, email: str, password: str):
    await client.get("/signin", headers=HTML)
    form = {"organization": organization, "email": email, "password": password,
            "form_token": client.cookies["roster_signin"]}  # fmt: skip
    return await client.post("/signin", data=form, headers=HTML)


async def test_a_console_sign_in_with_a_control_character_is_a_wrong_one(client):
    slug, email = client.tenant.slug, f"fm@{client.tenant.slug}.example"
    tries = [(slug + c, email, PASSWORD) for c in CONTROLS]
    tries += [(slug, email.replace("@", c + "@"), PASSWORD) for c in CONTROLS]
    tries.append((slug, email, PASSWORD + NUL))  # counts as one failure of the account
    for fields in tries:
        answer = await _console_sign_in(client, *fields)
        assert answer.status_code == 400 and html.escape(WRONG, quote=True) in answer.text
    assert (await _console_sign_in(client, slug, email, PASSWORD)).status_code == 303


async def test_an_app_sign_in_with_a_control_character_is_a_wrong_one(client):
    for control in CONTROLS:
        email = f"cy{control}@{client.tenant.slug}.example"
        code = await client.post("/app/v1/sign-in/code", json={"email": email})
        assert code.status_code == 202 and code.json() == {"detail": SENT}
        with_org = {"email": f"cy@{client.tenant.slug}.example", "organization": "x" + control}
        assert (await client.post("/app/v1/sign-in/code", json=with_org)).status_code == 202
        for body in ({"email": email, "code": "123456"}, {"email": "a@b.example", "code": control}):
            token = await client.post("/app/v1/sign-in/token", json=body)
            assert token.status_code == 401 and token.json() == {"detail": WRONG_CODE}
    sane = {"email": f"cy@{client.tenant.slug}.example"}
    assert (await client.post("/app/v1/sign-in/code", json=sane)).status_code == 202


async def test_a_console_search_or_audit_filter_with_a_control_character_matches_nothing(
    client,
):
    client.cookies.set("roster_console", client.admin)
    for control in CONTROLS:
        found = await client.get("/users", params={"q": "ctrlp" + control}, headers=HTML)
        assert found.status_code == 200 and "No users match." in found.text
        assert "ctrlperson" not in found.text
        for field in ("user", "actor"):
            log = await client.get("/audit", params={field: "c" + control}, headers=HTML)
            assert log.status_code == 200 and "No events match." in log.text
    assert "ctrlperson" in (await client.get("/users", params={"q": "ctrlp"})).text
    assert "ctrlperson" in (await client.get("/audit", params={"user": "ctrlp"})).text


SEARCHES = [
    ("GET", "/Users", 'userName eq "ctrlperson{raw}"'),
    ("GET", "/Users", 'userName eq "ctrlperson{escaped}"'),
    ("GET", "/Users", 'externalId eq "x{escaped}" or userName sw "c{raw}"'),
    ("GET", "/Groups", 'displayName eq "Team{escaped}"'),
    ("POST", "/Users/.search", 'userName eq "ctrlperson{escaped}"'),
    ("POST", "/.search", 'userName co "ctrl{raw}"'),
]


async def test_a_scim_filter_with_a_control_character_is_invalid(client):
    headers = {"Authorization": f"Bearer {client.scim}"}
    schema = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
    for control in (NUL, "\x1b"):
        for method, path, template in SEARCHES:
            text = template.format(raw=control, escaped=f"\\u{ord(control):04x}")
            if method == "GET":
                params = {"filter": text}
                answer = await client.get(f"/scim/v2{path}", params=params, headers=headers)
            else:
                body = {"schemas": [schema], "filter": text}
                answer = await client.post(f"/scim/v2{path}", json=body, headers=headers)
            assert answer.status_code == 400, (text, answer.text)
            assert answer.json()["scimType"] == "invalidFilter"
            detail = answer.json()["detail"]
            assert "control character" in detail or "without NUL" in detail
    sane = {"filter": 'userName eq "ctrlperson"'}
    listed = await client.get("/scim/v2/Users", params=sane, headers=headers)
    assert listed.json()["totalResults"] == 1


async def test_a_value_the_database_refuses_is_a_400_in_the_channels_format(
    client, engine, monkeypatch
):
    """Were an input's check missed, PostgreSQL's refusal of NUL is a 400 in the channel's
    format (SQLite stores NUL, and simply finds nothing)."""
    from roster.web.console import auth
    from roster.web.scim import filter as scim_filter

    monkeypatch.setattr(auth, "has_control", lambda *values: False)
    monkeypatch.setattr(scim_filter, "has_control", lambda *values: False)
    postgres = engine.dialect.name == "postgresql"
    slug = client.tenant.slug
    page = await _console_sign_in(client, slug + NUL, f"fm@{slug}.example", PASSWORD)
    assert page.status_code == 400
    assert ("control character" in page.text) == postgres
    headers = {"Authorization": f"Bearer {client.scim}"}
    params = {"filter": 'userName eq "ctrlperson\\u0000"'}
    listed = await client.get("/scim/v2/Users", params=params, headers=headers)
    if postgres:
        assert listed.status_code == 400 and listed.json()["scimType"] == "invalidValue"
    else:
        assert listed.status_code == 200 and listed.json()["totalResults"] == 0


async def test_names_an_operator_gives_refuse_control_characters(engine, tenant):
    """A SCIM token's or an organization's name (console, CLI) is text like any other."""
    from roster.store import tenants

    async with writing(engine) as conn:
        for name in ("entra\x00id", "entra\x1bid"):
            with pytest.raises(ValueError, match="control characters"):
                await scim_tokens.create(conn, tenant.id, name)
            with pytest.raises(tenants.TenantError, match="control character"):
                await tenants.create(conn, "ctrl-org", name)
        assert await tenants.find(conn, "ctrl-org") is None
