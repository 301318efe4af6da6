"""The organization's settings page in a browser, and times shown in its time zone on every
page."""

import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.console.conftest import screenshot, sign_in
from tests.factories import csv_bytes, people

NO_LIMITS = "e => { e.removeAttribute('min'); e.removeAttribute('max'); e.type = 'text' }"


def test_settings_are_saved_whole_or_not_at_all(page, server, org):
    sign_in(page, org)
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_label("Name")).to_have_value("Acme B.V.")
    expect(page.get_by_label("Time zone", exact=False)).to_have_value("UTC")
    expect(page.get_by_label("Days kept", exact=False)).to_have_value("30")
    expect(page.get_by_label("Percentage", exact=False)).to_have_value("10")
    expect(page.get_by_label("Minimum users", exact=False)).to_have_value("5")

    # As a browser without form validation (or a hand-made request) sends it.
    for field in ("#name", "#retention-days", "#guard-percent", "#guard-min"):
        page.locator(field).evaluate(NO_LIMITS)
    page.get_by_label("Name").fill("Acme Nederland B.V.")
    page.get_by_label("Time zone", exact=False).fill("Europe/Amsterdm")
    page.get_by_label("Days kept", exact=False).fill("0")
    page.get_by_label("Percentage", exact=False).fill("ten")
    page.get_by_label("Minimum users", exact=False).fill("2000000")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Save settings").click()
    assert answer.value.status == 400
    expect(page.get_by_role("alert")).to_contain_text("not saved")
    expect(page.locator("#e-timezone")).to_contain_text("'Europe/Amsterdm' is not a time zone")
    expect(page.locator("#e-retention_days")).to_contain_text("from 1 to 3,650")
    expect(page.locator("#e-guard_percent")).to_contain_text("'ten' is not a whole number")
    expect(page.locator("#e-guard_min_users")).to_contain_text("from 0 to 1,000,000")
    expect(page.locator("#e-name")).to_have_count(0)
    expect(page.get_by_label("Time zone", exact=False)).to_have_value("Europe/Amsterdm")
    expect(page.get_by_label("Time zone", exact=False)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name")).to_have_value("Acme Nederland B.V.")
    screenshot(page, "settings-errors")
    # Nothing of that form was stored, not even its valid name.
    shown = json.loads(server.roster("tenant", "settings", org.slug, "--json"))
    assert (shown["name"], shown["timezone"], shown["retention_days"]) == ("Acme B.V.", "UTC", 30)

    page.get_by_label("Time zone", exact=False).fill("Europe/Amsterdam")
    page.get_by_label("Days kept", exact=False).fill("90")
    page.get_by_label("Percentage", exact=False).fill("20")
    page.get_by_label("Minimum users", exact=False).fill("50")
    expect(page.get_by_label("An SFTP pickup is rejected")).to_be_checked()  # all on at first
    page.get_by_label("An SFTP pickup is rejected").uncheck()
    page.get_by_label("No new SFTP file has arrived for 48 hours").uncheck()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("settings are saved")
    expect(page.locator("header .who")).to_contain_text("Acme Nederland B.V.")
    expect(page.get_by_label("Days kept", exact=False)).to_have_value("90")
    shown = json.loads(server.roster("tenant", "settings", org.slug, "--json"))
    assert shown == {
        "slug": org.slug, "name": "Acme Nederland B.V.", "timezone": "Europe/Amsterdam",
        "retention_days": 90, "guard_percent": 20, "guard_min_users": 50,
        "notices_off": ["rejected", "stale"],
    }  # fmt: skip
    expect(page.get_by_label("An SFTP pickup is rejected")).not_to_be_checked()
    expect(page.get_by_label("A pickup or import is held by the deletion guard")).to_be_checked()
    screenshot(page, "settings")


def test_every_page_shows_times_in_the_organizations_zone(page, server, org, tmp_path):
    # India: no daylight saving, half an hour off UTC, so no page can agree with it by chance.
    server.roster("tenant", "settings", org.slug, "--timezone", "Asia/Kolkata")
    file = tmp_path / "users.csv"
    file.write_bytes(csv_bytes(people(2)))
    server.roster("import", str(file), "--tenant", org.slug, "--mode", "add")
    imported = json.loads(server.roster("imports", "list", "--tenant", org.slug, "--json"))[0]
    at = datetime.fromisoformat(imported["created_at"]).astimezone(ZoneInfo("Asia/Kolkata"))
    # The page shows minutes; the audit event may be a moment later than the import's record.
    minutes = {(at + timedelta(minutes=n)).strftime("%Y-%m-%d %H:%M IST") for n in (0, 1)}
    stamp = re.compile("|".join(re.escape(m) for m in sorted(minutes)))

    sign_in(page, org)
    page.goto("/imports")
    expect(page.locator("table")).to_contain_text(stamp)
    page.locator("table a").first.click()
    expect(page.locator("dl")).to_contain_text(
        re.compile(re.escape(at.strftime("%H:%M")) + r":\d\d IST")
    )
    page.goto("/audit")
    expect(page.locator("table")).to_contain_text(stamp)
    page.goto("/users")
    page.get_by_role("link", name="user000001").click()
    expect(page.locator("dl").first).to_contain_text(stamp)
    expect(page.locator("main")).not_to_contain_text("UTC")
