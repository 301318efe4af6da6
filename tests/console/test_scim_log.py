"""The provisioning log in a browser: reached from Integrations, newest first, filtered by
status, and one request on its own page."""

import json
import time

import httpx
from playwright.sync_api import expect

from tests.console.conftest import screenshot, sign_in
from tests.console.test_audit import SCIM_USER


def test_the_provisioning_log_lists_filters_and_shows_one_request(page, server, org):
    token = server.roster("scim", "token", "create", "--tenant", org.slug, "--name", "entra")
    headers = {"Authorization": f"Bearer {token.strip()}"}
    users = f"{server.url}/scim/v2/Users"
    assert httpx.post(users, json=SCIM_USER, headers=headers, timeout=10).status_code == 201
    refused = httpx.post(users, json={"userName": 7}, headers=headers, timeout=10)
    assert refused.status_code == 400
    deadline = time.monotonic() + 5  # written within a second, off the requests' path
    while len(json.loads(server.roster("scim", "log", "--tenant", org.slug, "--json"))) < 2:
        assert time.monotonic() < deadline, "the log was not written"
        time.sleep(0.2)

    sign_in(page, org)
    page.goto("/integrations")
    page.get_by_role("link", name="Provisioning log").click()
    rows = page.locator("table.scim-log tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("400")  # newest first
    expect(rows.first).to_contain_text("refused")
    expect(rows.nth(1)).to_contain_text("scimperson")
    expect(rows.nth(1)).to_contain_text("created")
    screenshot(page, "scim-log")

    page.get_by_label("Status").fill("4xx")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    page.get_by_label("Status").fill("")
    page.get_by_label("User or group").fill("SCIMPERSON")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="SCIM request")).to_be_visible()
    expect(page.locator("dl.fields")).to_contain_text("POST /scim/v2/Users")
    expect(page.locator("dl.fields")).to_contain_text("entra")
