"""The import history in the browser: every channel listed, an import's report, undo (and a
blocked undo's reasons), and organizations kept apart."""

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import Org, Server, screenshot, sign_in
from tests.console.test_uploads import csv_file, seed, upload, user_row


def apply_upload(page: Page, data: bytes, name: str) -> str:
    """Upload and apply a file; the import's id."""
    upload(page, data, name=name)
    page.get_by_role("button", name="Apply this file").click()
    expect(page).to_have_url(re.compile(r"/imports/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def test_the_history_lists_every_channel_and_undo_works(
    page: Page, server: Server, org: Org, tmp_path: Path
) -> None:
    seed(server, org, tmp_path, 2)  # through the CLI
    sign_in(page, org)
    apply_upload(page, csv_file(user_row(10), user_row(11)), "joiners.csv")
    page.get_by_role("link", name="Imports", exact=True).click()
    rows = page.locator("table.imports tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("joiners.csv")  # newest first
    expect(rows.first).to_contain_text("csv")
    expect(rows.first).to_contain_text(org.admin_email)
    expect(rows.nth(1)).to_contain_text("seed.csv")
    expect(rows.nth(1)).to_contain_text("cli")
    screenshot(page, "imports")

    rows.first.get_by_role("link").click()
    page.get_by_role("link", name="Undo this import").click()
    expect(page.get_by_role("heading", name="Undo this import?")).to_be_visible()
    page.get_by_role("button", name="Undo the import").click()
    expect(page.get_by_role("status")).to_contain_text("Undone: 2 added users removed")
    expect(page.locator(".status-line")).to_contain_text("Undone")
    expect(page.get_by_role("link", name="Undo this import")).to_have_count(0)
    page.goto("/users")
    expect(page.locator("table.list")).not_to_contain_text("user010@example.com")
    expect(page.locator("table.list")).to_contain_text("user001@example.com")
    page.goto("/imports")
    expect(page.locator("table.imports tbody tr").first).to_contain_text("console")


def test_an_undone_undo_shows_its_import_applied_again(page: Page, org: Org) -> None:
    sign_in(page, org)
    imported = apply_upload(page, csv_file(user_row(1), user_row(2)), "joiners.csv")
    page.goto(f"/imports/{imported}/undo")
    page.get_by_role("button", name="Undo the import").click()
    expect(page.get_by_role("status")).to_contain_text("Undone: 2 added users removed")
    page.goto("/imports")
    rows = page.locator("table.imports tbody tr")
    rows.first.get_by_role("link").click()  # the undo
    page.get_by_role("link", name="Undo this import").click()
    page.get_by_role("button", name="Undo the import").click()
    expect(page.get_by_role("status")).to_contain_text("2 removed users restored")
    page.goto("/imports")
    expect(rows).to_have_count(3)
    expect(rows.locator(".status")).to_have_text(["applied", "undone", "applied"])
    page.goto(f"/imports/{imported}")
    expect(page.locator(".status-line")).to_contain_text("Applied")


def test_a_blocked_undo_names_who_changed_since(page: Page, org: Org) -> None:
    sign_in(page, org)
    first = apply_upload(page, csv_file(user_row(1)), "first.csv")
    apply_upload(page, csv_file(user_row(1, department="Facilities")), "second.csv")
    page.goto(f"/imports/{first}/undo")
    page.get_by_role("button", name="Undo the import").click()
    expect(page.get_by_role("alert")).to_contain_text("user001 has changed since the import")
    page.goto(f"/imports/{first}")
    expect(page.locator(".status-line")).to_contain_text("Applied")


def test_another_organization_gets_404(page: Page, server: Server, org: Org) -> None:
    sign_in(page, org)
    upload(page, csv_file(user_row(1)))
    upload_url = page.url
    page.get_by_role("button", name="Apply this file").click()
    expect(page).to_have_url(re.compile(r"/imports/[0-9a-f-]{36}$"))
    import_url = page.url
    page.get_by_role("button", name="Sign out").click()

    other = server.organization("Other Org")
    sign_in(page, other)
    expect(page).to_have_url(re.compile(r"/users$"))
    for path in (import_url, import_url + "/errors.csv", import_url + "/undo"):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.goto("/imports")
    expect(page.locator("table.imports")).to_contain_text("No imports yet")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    forged = page.request.post(import_url + "/undo", form={"csrf": csrf})
    assert forged.status == 404
    response = page.goto(upload_url)  # the first admin's kept file
    assert response is not None and response.status == 404
    response = page.goto("/imports/not-a-uuid")
    assert response is not None and response.status == 404


def test_the_add_user_list_button_can_be_read(page: Page, org: Org) -> None:
    """The Imports page's main action: its text in the accent's ink on the accent, never white
    on white."""
    sign_in(page, org)
    page.goto("/imports")
    button = page.get_by_role("link", name="Add user list")
    expect(button).to_be_visible()
    ink, ground = button.evaluate(
        "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]"
    )
    assert ink != ground and ground not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), (ink, ground)
