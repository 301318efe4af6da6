"""Usernames and e-mail addresses are compared by one key on every channel (SCIM, CSV, the
console's form): compatibility forms and case folded, accents composed, so a full-width
"admin" is "admin", and a decomposed "José" finds the composed one."""

import unicodedata
from typing import Any

import pytest

from roster.domain.fields import FIELDS, key
from roster.domain.mode import Mode
from roster.jobs import imports, people
from tests.factories import csv_bytes, person
from tests.scim.payloads import PATCH, entra_user

FULL_WIDTH = "ａｄｍｉｎ"
COMPOSED = "José.Müller@contoso.com"
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)


def test_one_key_for_compatibility_case_and_composition():
    assert key(FULL_WIDTH) == key("ADMIN") == key("admin") == "admin"
    assert key(DECOMPOSED) == key(COMPOSED) == key(COMPOSED.upper())
    assert key("ſhared@example.com") == "shared@example.com"
    assert key("Straße") == key("STRASSE")


def scim_user(username: str, email: str | None = None) -> dict[str, Any]:
    address = email or (username if "@" in username else f"{username}@contoso.com")
    return entra_user(
        userName=username, emails=[{"primary": True, "type": "work", "value": address}]
    )


async def test_scim_full_width_username_and_email_clash(scim):
    assert (await scim.post("/Users", json=scim_user("admin"))).status_code == 201
    clash = await scim.post("/Users", json=scim_user(FULL_WIDTH, "other@contoso.com"))
    assert clash.status_code == 409 and clash.json()["scimType"] == "uniqueness", clash.text
    mail = await scim.post("/Users", json=scim_user("other", f"{FULL_WIDTH}@contoso.com"))
    assert mail.status_code == 409 and mail.json()["scimType"] == "uniqueness", mail.text


@pytest.mark.parametrize(
    "text",
    [
        f'userName eq "{DECOMPOSED}"',  # the plain form, read without the parser
        f'userName eq "{DECOMPOSED.upper()}"',
        f'userName eq "{DECOMPOSED}" and active eq true',  # through the parser
        f'userName sw "{DECOMPOSED[:6]}"',
        f'userName co "{DECOMPOSED[2:7]}"',
        f'userName ew "{DECOMPOSED[-22:]}"',
        f'emails[value eq "{DECOMPOSED}"]',
        f'emails.value co "{DECOMPOSED[:7]}"',
        f'displayName co "{unicodedata.normalize("NFD", "Müller")}"',
        f'not (userName ne "{DECOMPOSED}")',
    ],
)
async def test_a_decomposed_filter_finds_the_composed_user(scim, text):
    body = scim_user(COMPOSED) | {"displayName": "Müller, José"}
    created = await scim.post("/Users", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["userName"] == COMPOSED  # stored composed
    found = (await scim.get("/Users", params={"filter": text})).json()
    assert [u["userName"] for u in found["Resources"]] == [COMPOSED], text


async def test_a_full_width_username_or_email_finds_the_user(scim):
    await scim.post("/Users", json=scim_user("admin"))
    for text in (f'userName eq "{FULL_WIDTH}"', f'emails co "{FULL_WIDTH}@"'):
        found = (await scim.get("/Users", params={"filter": text})).json()
        assert found["totalResults"] == 1, text


def csv_person(n: int, username: str, email: str | None = None) -> dict[str, str]:
    return person(n, CSV_USERNAME=username, CSV_EMAIL=email or f"user{n}@example.com")


async def test_csv_full_width_is_a_duplicate_in_the_file(engine, tenant):
    rows = [csv_person(1, "admin"), csv_person(2, FULL_WIDTH)]
    report = await imports.run_import(
        engine, tenant.slug, csv_bytes(rows), mode=Mode.ADD, channel="csv", actor="t"
    )
    codes = {(i.row, i.code) for i in report.issues}
    assert {(2, "duplicate_username"), (3, "duplicate_username")} <= codes
    mails = [csv_person(1, "one", "admin@example.com"), csv_person(2, "two", "ADMIN@ｅxample.com")]
    report = await imports.run_import(
        engine, tenant.slug, csv_bytes(mails), mode=Mode.ADD, channel="csv", actor="t"
    )
    assert {(2, "duplicate_email"), (3, "duplicate_email")} <= {
        (i.row, i.code) for i in report.issues
    }


async def test_csv_full_width_matches_the_existing_user(engine, tenant):
    first = await imports.run_import(
        engine,
        tenant.slug,
        csv_bytes([csv_person(1, "admin")]),
        mode=Mode.ADD,
        channel="csv",
        actor="t",
    )
    assert first.counts["added"] == 1
    again = await imports.run_import(
        engine,
        tenant.slug,
        csv_bytes([csv_person(1, FULL_WIDTH, "user1@ｅxample.com")]),
        mode=Mode.ADD,
        channel="csv",
        actor="t",
    )
    assert again.status == "applied" and again.counts["added"] == 0, again.counts


def form(n: int, username: str, email: str) -> dict[str, str]:
    row = csv_person(n, username, email)
    return {f.name: row[f.column] for f in FIELDS}


async def test_console_form_full_width_clashes(engine, tenant):
    by = {"channel": "console", "actor": "fm@example.com"}
    assert (await people.add(engine, tenant.id, form(1, "admin", "a@example.com"), **by)).ok
    name = await people.add(engine, tenant.id, form(2, FULL_WIDTH, "b@example.com"), **by)
    assert [(i.column, i.code) for i in name.issues] == [("username", "taken")]
    mail = await people.add(engine, tenant.id, form(3, "other", "Ａ@example.com"), **by)
    assert [(i.column, i.code) for i in mail.issues] == [("email", "taken")]


async def test_a_key_that_would_not_fit_is_refused(scim):
    expanding = "\ufdfa" * 60  # each folds to 18 characters, 33 bytes in UTF-8
    response = await scim.post("/Users", json=scim_user(expanding, "x@contoso.com"))
    assert response.status_code == 400 and response.json()["scimType"] == "invalidValue"
    assert "too long" in response.json()["detail"]


async def test_a_group_name_whose_key_would_not_fit_is_refused(scim):
    wide = "\u3316" * 100  # each folds to six katakana, three bytes each in UTF-8
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": wide}
    response = await scim.post("/Groups", json=body)
    assert response.status_code == 400 and response.json()["scimType"] == "invalidValue"
    full_width = {**body, "displayName": "Ｓales"}
    assert (await scim.post("/Groups", json=body | {"displayName": "sales"})).status_code == 201
    assert (await scim.post("/Groups", json=full_width)).status_code == 409


async def test_a_decomposed_patch_path_filter_finds_the_composed_address(scim):
    user = (await scim.post("/Users", json=scim_user(COMPOSED))).json()
    operation = {
        "op": "replace",
        "path": f'emails[value eq "{DECOMPOSED.upper()}"].value',
        "value": "new@contoso.com",
    }
    patched = await scim.patch(
        f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": [operation]}
    )
    assert patched.status_code == 200, patched.text
    assert [e["value"] for e in patched.json()["emails"]] == ["new@contoso.com"]
