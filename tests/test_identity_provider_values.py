"""What identity providers really send, over HTTP on both databases (httpx against the app,
outside tests/console, whose sync Playwright owns the event loop): values stored and shown whole
up to Entra ID's own limits, names derived when not sent, an optional value Roster cannot use
left out with a warning, special-use e-mail domains, Okta's placeholder password."""

import html
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from roster import mail
from roster.domain.csvfile import parse
from roster.domain.fields import FIELDS
from roster.domain.mode import Mode
from roster.jobs import people
from roster.jobs.imports import run_import
from roster.settings import Settings
from roster.store import (
    admins,
    directory_reads,
    imports,
    provisioning_log,
    scim_tokens,
    sessions,
)
from roster.store.db import writing
from roster.store.schema import audit_events, users
from roster.web.app import create_app
from roster.web.console.common import COOKIE
from tests.factories import csv_bytes, person
from tests.scim.payloads import CORE, ENTERPRISE, PATCH, entra_user

SCIM_JSON = {"Content-Type": "application/scim+json"}


def last_entry(app: Any, engine: Any, tenant: Any) -> Any:
    """The organization's newest provisioning log entry (what the admin sees of the last SCIM
    request), once the log's waiting rows are written."""

    async def last() -> provisioning_log.Entry:
        await app.state.provisioning_log.close()
        async with engine.connect() as conn:
            found, _ = await provisioning_log.search(
                conn, tenant.id, provisioning_log.Filter(), ZoneInfo("UTC")
            )
        return found[0]

    return last


@dataclass
class Live:
    scim: httpx.AsyncClient
    web: httpx.AsyncClient  # the console (signed in as an admin) and the app API
    last: Any  # async: the newest provisioning log entry
    settings: Settings
    tenant: Any
    drained: Any


@pytest.fixture
async def live(engine, tenant, tmp_path: Path) -> AsyncIterator[Live]:
    row = person(999_999, CSV_EMAIL="fm@example.com")
    added = await people.add(
        engine, tenant.id, {f.name: row[f.column] for f in FIELDS}, channel="cli", actor="t",
        role="admin",
    )  # fmt: skip
    assert added.user_id is not None
    async with writing(engine) as conn:
        await admins.set_password(conn, tenant.id, added.user_id, "not-a-real-hash")
        _, cookie = await sessions.create(
            conn, tenant.id, added.user_id, "console", timedelta(hours=1)
        )
        _, token = await scim_tokens.create(conn, tenant.id, "entra-id")
    settings = Settings(data_dir=tmp_path / "var")
    app = create_app(engine, settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(
            transport=transport,
            base_url="http://roster/scim/v2",
            headers={"Authorization": f"Bearer {token}"},
        ) as scim,
        httpx.AsyncClient(
            transport=transport, base_url="http://roster", cookies={COOKIE: cookie}
        ) as web,
    ):
        yield Live(
            scim, web, last_entry(app, engine, tenant), settings, tenant,
            app.state.code_mail.drained,
        )  # fmt: skip
    await app.state.direct_reads.close()
    await app.state.direct_writes.close()


async def _me(live: Live, email: str) -> dict[str, Any]:
    """/app/v1/me of the user with this address, signed in with a mailed code."""
    asked = await live.web.post("/app/v1/sign-in/code", json={"email": email})
    assert asked.status_code == 202
    await live.drained()
    mails = [m for m in mail.outbox(live.settings) if m["to"] == email]
    found = re.search(r"\b(\d{6})\b", mails[-1]["subject"])
    assert found
    tokens = await live.web.post("/app/v1/sign-in/token", json={"email": email, "code": found[1]})
    assert tokens.status_code == 200, tokens.text
    me = await live.web.get(
        "/app/v1/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert me.status_code == 200, me.text
    result: dict[str, Any] = me.json()
    return result


# Entra ID's own limits, filled: userPrincipalName 113, displayName 256, givenName and surname
# 64, jobTitle 128, department 64, phone numbers 64; e-mail 320, of which an address's parts
# hold at most 64 + 1 + 253 (longer than SMTP's path of 254).
UPN = "anne-marie.van.den.heuvel-smit." + "x" * 71 + "@corp.local"
LONGEST_EMAIL = (
    "anne-marie.van.den.heuvel-smit." + "x" * 33 + "@" + ("workplace" + "w" * 53 + ".") * 3
    + "d" * 53 + ".corp.local"
)  # fmt: skip
LONG = {
    "username": UPN,
    "display_name": ("Anne-Marie van den Heuvel-Smit <Workplace> " * 6)[:255] + "Z",
    "first_name": "Anne-Marie " + "Ä" * 53,
    "surname": "van den Heuvel-Smit " + "e" * 44,
    "title": ("Senior Workplace Experience Coordinator, " * 4)[:128],
    "department": "Facility Management & Workplace Services " + "d" * 23,
    "phone": "+31 20 123 4567 " + "8" * 48,
    "mobile": "+31 6 " + "1" * 58,
    "email": LONGEST_EMAIL,
}


def long_user() -> dict[str, Any]:
    return {
        "schemas": [CORE, ENTERPRISE],
        "userName": LONG["username"],
        "displayName": LONG["display_name"],
        "name": {"givenName": LONG["first_name"], "familyName": LONG["surname"]},
        "title": LONG["title"],
        "emails": [{"type": "work", "primary": True, "value": LONG["email"]}],
        "phoneNumbers": [
            {"type": "work", "value": LONG["phone"]},
            {"type": "mobile", "value": LONG["mobile"]},
        ],
        ENTERPRISE: {"department": LONG["department"]},
    }


def test_the_long_values_are_at_entra_limits() -> None:
    assert len(UPN) == 113 and len(LONG["display_name"]) == 256
    assert len(LONG["first_name"]) == len(LONG["surname"]) == 64
    assert len(LONG["title"]) == 128 and len(LONG["department"]) == 64
    assert len(LONG["phone"]) == len(LONG["mobile"]) == 64
    local, domain = LONGEST_EMAIL.split("@")
    assert (len(local), len(domain)) == (64, 253)


async def test_entra_values_are_stored_and_shown_whole(live: Live, engine) -> None:
    created = await live.scim.post("/Users", json=long_user())
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    got = (await live.scim.get(f"/Users/{user_id}")).json()
    assert (got["userName"], got["displayName"], got["title"]) == (
        LONG["username"], LONG["display_name"], LONG["title"]
    )  # fmt: skip
    assert got["name"] == {"givenName": LONG["first_name"], "familyName": LONG["surname"]}
    assert got[ENTERPRISE]["department"] == LONG["department"]
    assert {p["type"]: p["value"] for p in got["phoneNumbers"]} == {
        "work": LONG["phone"], "mobile": LONG["mobile"]
    }  # fmt: skip
    assert got["emails"][0]["value"] == LONG["email"]

    me = await _me(live, LONG["email"])
    assert {name: me[name] for name in LONG} == LONG

    page = await live.web.get(f"/users/{user_id}")
    assert page.status_code == 200
    for value in LONG.values():
        assert html.escape(value, quote=False) in page.text or html.escape(value) in page.text
    assert "<Workplace>" not in page.text  # data, escaped
    listed = await live.web.get("/users", params={"q": "heuvel-smit"})
    assert html.escape(LONG["display_name"]) in listed.text

    async with engine.connect() as conn:
        exported = {
            u["username"]: u for u in await directory_reads.list_users(conn, live.tenant.id)
        }
    assert {name: exported[UPN][name] for name in LONG} == LONG


async def test_beyond_even_entra_limits_an_optional_value_is_left_out(live: Live) -> None:
    user = (await live.scim.post("/Users", json=entra_user())).json()
    too_long = "Senior Workplace Experience Coordinator " * 4  # more than Entra's 128
    patched = await live.scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "replace", "path": "title", "value": too_long},
                {"op": "replace", "path": "displayName", "value": "Jansen, Jan (Support)"},
            ],
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "Manager"  # the previous value stays
    assert patched.json()["displayName"] == "Jansen, Jan (Support)"  # the rest is written
    assert (await live.last()).warnings == [
        f"title left out: must be at most 128 characters (this is {len(too_long.strip())})"
    ]


@pytest.mark.parametrize(
    ("path", "value", "attribute"),
    [
        ('phoneNumbers[type eq "work"].value', "+31 20 123 4567 ext. 12", "phoneNumbers"),
        ('photos[type eq "photo"].value', "javascript:alert(1)", "photos"),
        ("displayName", "Jan\u202eJansen", "displayName"),
    ],
)
async def test_an_optional_value_that_breaks_a_rule_keeps_the_old_one(
    live: Live, path: str, value: str, attribute: str
) -> None:
    body = entra_user(
        phoneNumbers=[{"type": "work", "value": "+31 20 123 4567"}],
        photos=[{"type": "photo", "value": "https://photos.example.com/jan.jpg"}],
    )
    user = (await live.scim.post("/Users", json=body)).json()
    patched = await live.scim.patch(
        f"/Users/{user['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": path, "value": value}]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()[attribute] == user[attribute]
    (warning,) = (await live.last()).warnings
    assert warning.startswith(f"{path} left out: ")

    # On create and PUT too: the person is written, without the value.
    created = await live.scim.post(
        "/Users", json={**entra_user(2, displayName=None), **_at(path, value)}
    )
    assert created.status_code == 201, created.text
    assert (await live.last()).warnings == [warning]
    replaced = await live.scim.put(f"/Users/{user['id']}", json={**body, **_at(path, value)})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()[attribute] == user[attribute]
    assert (await live.last()).warnings == [warning]


def _at(path: str, value: str) -> dict[str, Any]:
    if path.startswith("phoneNumbers"):
        return {"phoneNumbers": [{"type": "work", "value": value}]}
    if path.startswith("photos"):
        return {"photos": [{"type": "photo", "value": value}]}
    return {path: value}


async def test_microsofts_documented_create_without_display_name(live: Live) -> None:
    """The body of "Develop and plan provisioning for a SCIM endpoint": no displayName."""
    body = {
        "schemas": [CORE, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName",
                 "givenName": "givenName"},
        "roles": [],
        "preferredLanguage": "nl-NL",
        "addresses": [{"type": "work", "streetAddress": "Herengracht 1", "country": "NL"}],
    }  # fmt: skip
    created = await live.scim.post("/Users", json=body)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["displayName"] == "givenName familyName"  # name.formatted
    assert "preferredLanguage" not in user and "addresses" not in user
    del body["name"]["formatted"]
    body["userName"], body["emails"][0]["value"] = "second", "second@testuser.com"
    second = await live.scim.post("/Users", json=body)
    assert second.json()["displayName"] == "givenName familyName"  # given and family name
    body["userName"], body["emails"][0]["value"] = "third", "third@testuser.com"
    del body["name"]
    third = (await live.scim.post("/Users", json=body)).json()
    assert third["displayName"] == "third"  # userName
    assert third["name"] == {"givenName": "third", "familyName": "third"}


async def test_okta_put_without_display_name_and_its_placeholder_password(
    live: Live, engine
) -> None:
    """Okta's documented create sends a placeholder password; its PUT has no displayName."""
    body = {
        "schemas": [CORE],
        "userName": "isaac.brock@example.com",
        "name": {"givenName": "Isaac", "familyName": "Brock"},
        "emails": [{"primary": True, "value": "isaac.brock@example.com", "type": "work"}],
        "displayName": "Isaac Brock",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }
    created = await live.scim.post("/Users", json=body)
    assert created.status_code == 201, created.text
    assert "1mz050nq" not in created.text
    user = created.json()
    put = {k: v for k, v in body.items() if k not in ("displayName", "password")}
    put["name"] = {"givenName": "Isaac", "familyName": "Brock-Smit"}
    replaced = await live.scim.put(f"/Users/{user['id']}", json={**put, "id": user["id"]})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["displayName"] == "Isaac Brock-Smit"
    got = await live.scim.get(f"/Users/{user['id']}")
    listed = await live.scim.get(
        "/Users", params={"filter": 'userName eq "isaac.brock@example.com"'}
    )
    assert "1mz050nq" not in got.text + listed.text and "password" not in got.text
    async with engine.connect() as conn:
        stored = (
            await conn.execute(sa.select(users).where(users.c.id == uuid.UUID(user["id"])))
        ).one()
        events = (
            await conn.execute(
                sa.select(audit_events.c.before, audit_events.c.after).where(
                    audit_events.c.tenant_id == live.tenant.id
                )
            )
        ).all()
    assert "1mz050nq" not in repr(tuple(stored)) + repr(events)


async def test_a_patch_that_removes_a_name_derives_it(live: Live) -> None:
    user = (await live.scim.post("/Users", json=entra_user())).json()
    removed = await live.scim.patch(
        f"/Users/{user['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "remove", "path": "displayName"}]},
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["displayName"] == "Jan Jansen"
    no_names = await live.scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "remove", "path": "name.givenName"},
                {"op": "remove", "path": "name.familyName"},
                {"op": "replace", "path": "displayName", "value": "Heuvel-Smit, Anne-Marie"},
            ],
        },
    )
    assert no_names.status_code == 200, no_names.text
    assert no_names.json()["name"] == {"givenName": "Anne-Marie", "familyName": "Heuvel-Smit"}
    only_display = await live.scim.post(
        "/Users",
        json={**entra_user(2, displayName="Anne-Marie van den Heuvel-Smit"), "name": None},
    )
    assert only_display.status_code == 201, only_display.text
    assert only_display.json()["name"] == {
        "givenName": "Anne-Marie", "familyName": "van den Heuvel-Smit"
    }  # fmt: skip


async def test_identity_that_cannot_be_used_is_still_refused(live: Live) -> None:
    for body, named in (
        (entra_user(userName="x" * 257), "userName"),
        (entra_user(emails=[{"type": "work", "value": "jan@localhost"}]), "emails"),
        (entra_user(emails=[{"type": "work", "value": "jan@corp.invalid"}]), "emails"),
        (entra_user(emails=[{"type": "work", "value": "x" * 3 + LONGEST_EMAIL}]), "emails"),
        # beyond SMTP's path, checked by parts: a space before the @, a '_' in the domain
        (entra_user(emails=[{"type": "work", "value": LONGEST_EMAIL.replace("-", " ")}]), "emails"),
        (entra_user(emails=[{"type": "work", "value": LONGEST_EMAIL.replace("k", "_")}]), "emails"),
    ):
        response = await live.scim.post("/Users", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["scimType"] == "invalidValue"
        assert named in response.json()["detail"]


SPECIAL = [
    "k.de.vries@corp.local",
    "jürgen.müller@corp.local",  # not plain ASCII: email-validator's own path
    "piet@hq.internal",
    "els@office.lan",
    "ali@acme.test",
]


async def test_special_use_domains_on_every_channel(live: Live, engine) -> None:
    # SCIM
    for n, address in enumerate(SPECIAL):
        body = entra_user(n, userName=f"scim{n}", emails=[{"type": "work", "value": address}])
        response = await live.scim.post("/Users", json=body)
        assert response.status_code == 201, response.text
    # the console's form (jobs/people, as the page posts it)
    for n, address in enumerate(SPECIAL):
        row = person(500 + n, CSV_EMAIL=address.replace("@", "+form@"))
        values, issues = people.validate({f.name: row[f.column] for f in FIELDS})
        assert issues == [] and values["email"] == row["CSV_EMAIL"]
    page = await live.web.get("/users/new")
    assert page.status_code == 200
    # a CSV file
    rows = [person(600 + n, CSV_EMAIL=a.replace("@", "+csv@")) for n, a in enumerate(SPECIAL)]
    report = await run_import(
        engine, live.tenant.slug, csv_bytes(rows), mode=Mode.ADD, channel="cli", actor="t"
    )
    assert report.errors == [] and report.counts["added"] == len(SPECIAL)


def test_the_csv_file_keeps_the_template_limits() -> None:
    rows = [
        person(1, CSV_DISPLAYNAME="x" * 21),
        person(2, CSV_DISPLAYNAME="x" * 20, CSV_EMAIL="two@corp.local"),
        person(3, CSV_TITLE="Senior Workplace Experience Coordinator"),
        person(4, CSV_EMAIL=LONGEST_EMAIL),  # beyond SMTP's path: a file's addresses are mailed
    ]
    parsed = parse(csv_bytes(rows))
    problems = sorted((i.row, i.column, i.code) for i in parsed.issues)
    assert problems == [
        (2, "CSV_DISPLAYNAME", "too_long"),
        (4, "CSV_TITLE", "too_long"),
        (5, "CSV_EMAIL", "invalid_email"),
    ]
    _, issues = people.validate({"display_name": "x" * 21})
    assert ("display_name", "too_long") in [(i.column, i.code) for i in issues]


async def test_an_admin_with_the_longest_address_is_named_in_the_history(
    live: Live, engine
) -> None:
    """The audit trail and the import history name whoever acted, by e-mail address."""
    report = await run_import(
        engine, live.tenant.slug, csv_bytes([person(900)]), mode=Mode.ADD, channel="console",
        actor=LONGEST_EMAIL,
    )  # fmt: skip
    assert report.errors == [] and report.counts["added"] == 1
    async with engine.connect() as conn:
        history = await imports.history(conn, live.tenant.id)
        actors = await conn.scalars(
            sa.select(audit_events.c.actor).where(audit_events.c.import_id == report.import_id)
        )
        assert set(actors) == {LONGEST_EMAIL}
    assert [r.actor for r in history if r.id == report.import_id] == [LONGEST_EMAIL]
