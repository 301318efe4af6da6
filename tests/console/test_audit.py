"""The audit log in a browser: newest first, filtered by channel, user, actor and dates, and only
the organization's own events."""

import re
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import expect

from tests.console.conftest import screenshot, sign_in
from tests.factories import csv_bytes, people

SCIM_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "scimperson",
    "name": {"givenName": "Sam", "familyName": "Scimmer"},
    "displayName": "Sam Scimmer",
    "emails": [{"type": "work", "value": "sam@example.com", "primary": True}],
    "active": True,
}


def populate(server, org, tmp_path) -> None:
    """Three users from a CLI import, one of them changed, and one user from SCIM."""
    rows = people(3)
    file = tmp_path / "users.csv"
    file.write_bytes(csv_bytes(rows))
    server.roster("import", str(file), "--tenant", org.slug, "--mode", "add")
    rows[1]["CSV_TITLE"] = "Director"
    file.write_bytes(csv_bytes(rows))
    server.roster("import", str(file), "--tenant", org.slug, "--mode", "add")
    add_scim_user(server, org)


def add_scim_user(server, org) -> None:
    """SCIM_USER, created by an identity provider through a token named entra."""
    token = server.roster("scim", "token", "create", "--tenant", org.slug, "--name", "entra")
    created = httpx.post(
        f"{server.url}/scim/v2/Users", json=SCIM_USER, timeout=10,
        headers={"Authorization": f"Bearer {token.strip()}"},
    )  # fmt: skip
    assert created.status_code == 201, created.text


def test_the_audit_log_filters_by_channel_user_actor_and_date(page, server, org, tmp_path):
    populate(server, org, tmp_path)
    sign_in(page, org)
    page.goto("/audit")
    rows = page.locator("table.audit tbody tr")
    expect(rows.first).to_contain_text("scimperson")  # newest first
    expect(rows.nth(1)).to_contain_text("Job title: Manager → Director")  # the field's label
    expect(rows).to_have_count(6)  # and the admin, added by `roster admin create`
    screenshot(page, "audit")

    page.get_by_label("Channel").select_option("scim")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("entra")
    expect(page.get_by_label("Channel")).to_have_value("scim")

    page.get_by_label("Channel").select_option("")
    page.get_by_label("User").fill("USER000001")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("updated")
    expect(rows.nth(1)).to_contain_text("added")
    rows.first.get_by_role("link", name="user000001").click()
    expect(page).to_have_url(re.compile(r"/users/[0-9a-f-]{36}$"))

    today = datetime.now(UTC).date()
    page.goto(f"/audit?to={today - timedelta(days=2)}")
    expect(page.locator("table.audit")).to_contain_text("No events match")
    page.goto(f"/audit?from={today - timedelta(days=1)}&actor=entra")
    expect(rows).to_have_count(1)
    page.goto("/audit?from=yesterday")
    expect(page.get_by_role("alert")).to_contain_text("From: 'yesterday' is not a date")


def test_another_organizations_admin_sees_none_of_its_events(page, server, org, tmp_path):
    populate(server, org, tmp_path)
    other = server.organization("Other Org")
    sign_in(page, other)
    page.goto("/audit")
    expect(page.locator("table.audit")).not_to_contain_text("scimperson")
    expect(page.locator("table.audit")).not_to_contain_text("user000001")
    page.goto("/audit?user=user0")
    expect(page.locator("table.audit")).to_contain_text("No events match")
