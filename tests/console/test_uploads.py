"""Add user list in the browser: upload, preview, apply with progress, the deletion guard,
invalid rows and the error report."""

import csv
import io
import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import Org, Server, screenshot, sign_in

HEADER = (
    '"CSV_USERNAME";"CSV_FIRSTNAME";"CSV_SURNAME";"CSV_DISPLAYNAME";"CSV_EMAIL";"CSV_DEPARTMENT"'
)


def user_row(n: int, department: str = "Support") -> str:
    name = f'"user{n:03}";"First{n}";"Surname{n}";"Surname{n}, F"'
    return f'{name};"user{n:03}@example.com";"{department}"'


def csv_file(*rows: str, header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


def upload(
    page: Page, data: bytes, mode: str = "Add these users", name: str = "people.csv"
) -> None:
    page.goto("/uploads/new")
    page.get_by_label("CSV file").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": data}
    )
    page.get_by_label(mode).check()
    page.get_by_role("button", name="Preview").click()


def seed(server: Server, org: Org, tmp_path: Path, count: int) -> None:
    """Users already in the directory, through the CLI (another channel)."""
    path = tmp_path / "seed.csv"
    path.write_bytes(csv_file(*(user_row(n) for n in range(count))))
    server.roster("import", str(path), "--tenant", org.slug, "--mode", "add", "--quiet")


def error_report_rows(page: Page, link: str) -> list[list[str]]:
    with page.expect_download() as download:
        page.get_by_role("link", name=link).click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def test_add_mode_preview_then_apply(page: Page, org: Org) -> None:
    sign_in(page, org)
    page.goto("/users")
    page.get_by_label("Add").click()
    page.get_by_role("link", name="Add user list").click()
    expect(page.get_by_role("heading", name="Add user list")).to_be_visible()
    expect(page.get_by_text("nobody is removed")).to_be_visible()
    screenshot(page, "upload-form")
    upload(page, csv_file(user_row(1), user_row(2), user_row(3)))
    expect(page).to_have_url(re.compile(r"/uploads/[\w-]{43}$"))
    added = page.get_by_role("region", name="To be added")
    for n in (1, 2, 3):
        expect(added).to_contain_text(f"user{n:03}@example.com")
    expect(page.locator("ul.counts")).to_contain_text("3 added")
    screenshot(page, "upload-preview")
    page.get_by_role("button", name="Apply this file").click()
    expect(page).to_have_url(re.compile(r"/imports/[0-9a-f-]{36}$"))
    expect(page.locator(".status-line")).to_contain_text("Applied")
    expect(page.locator("ul.counts")).to_contain_text("3 added")
    screenshot(page, "upload-result")
    page.goto("/users")
    expect(page.locator("table.list")).to_contain_text("user002@example.com")


def test_an_update_shows_each_changed_field(
    page: Page, server: Server, org: Org, tmp_path: Path
) -> None:
    seed(server, org, tmp_path, 2)
    sign_in(page, org)
    upload(page, csv_file(user_row(0), user_row(1, department="Facilities")))
    updated = page.get_by_role("region", name="To be updated")
    expect(updated).to_contain_text("user001")
    expect(updated.get_by_role("listitem")).to_contain_text("Department:")
    expect(updated.locator("del")).to_have_text("Support")
    expect(updated.locator("ins")).to_have_text("Facilities")
    expect(page.locator("ul.counts")).to_contain_text("1 unchanged")


def test_a_replace_that_removes_many_is_held_until_confirmed(
    page: Page, server: Server, org: Org, tmp_path: Path
) -> None:
    seed(server, org, tmp_path, 12)
    sign_in(page, org)
    upload(page, csv_file(user_row(0), user_row(1)), mode="Replace the current user list")
    expect(page.get_by_role("alert").filter(has_text="deletion guard")).to_contain_text(
        "would remove 10 of 13 users"
    )
    removed = page.get_by_role("region", name="To be removed")
    expect(removed).to_contain_text("user011")
    expect(removed).not_to_contain_text(org.admin_email)  # the last admin stays
    # Sent without the confirmation (a browser would refuse: the box is required), the server
    # holds it too, and says so.
    form = {
        "csrf": page.locator("input[name=csrf]").first.get_attribute("value") or "",
        "upload": page.locator("input[name=upload]").get_attribute("value") or "",
    }
    preview_url = page.url
    page.request.post("/uploads/apply", form=form)
    page.goto(preview_url + "/progress")
    expect(page.locator(".status-line")).to_contain_text("Held")
    page.get_by_role("link", name=re.compile("Back to the preview")).click()
    page.get_by_label("Yes, remove these 10 users").check()
    page.get_by_role("button", name="Apply this file").click()
    expect(page.locator(".status-line")).to_contain_text("Applied")
    expect(page.locator("ul.counts")).to_contain_text("10 removed")
    expect(page.locator("p.decision")).to_contain_text(
        f"It was applied because {org.admin_email} confirmed the removals"
    )
    expect(page.get_by_role("region", name="Removed").locator("tbody tr")).to_have_count(10)
    page.goto("/users")
    expect(page.locator("table.list")).not_to_contain_text("user011@example.com")
    expect(page.locator("table.list")).to_contain_text("user001@example.com")


def test_invalid_rows_show_their_place_and_the_report_neutralizes_formulas(
    page: Page, org: Org
) -> None:
    sign_in(page, org)
    data = csv_file(
        user_row(1) + ';"x"',
        '"bad user";"Ann";"Other";"Other, A";"not-an-address";"Sales";"=cmd"',
        header=HEADER + ';"=cmd|calc"',
    )
    upload(page, data)
    errors = page.locator("table.issues").filter(has_text="Errors")
    expect(errors).to_contain_text("CSV_EMAIL")
    expect(errors).to_contain_text("CSV_USERNAME")
    email_error = errors.locator("tr").filter(has_text="CSV_EMAIL").locator("td")
    # Row, person (the row's display name), column, the offending value, then the problem.
    expect(email_error.nth(0)).to_have_text("3")
    expect(email_error.nth(1)).to_have_text("Other, A")
    expect(email_error.nth(3)).to_have_text("not-an-address")
    expect(errors.locator("tr").filter(has_text="CSV_USERNAME").locator("td").nth(3)).to_have_text(
        "bad user"
    )
    expect(page.locator("table.issues").filter(has_text="Warnings")).to_contain_text("=cmd|calc")
    rows = error_report_rows(page, "Download the error report (CSV)")
    assert rows[0] == ["row", "column", "code", "message", "level", "value", "person"]
    email_row = next(row for row in rows if row[1] == "CSV_EMAIL")
    assert email_row[5:] == ["not-an-address", "Other, A"]
    assert rows[-1][:2] == ["1", "'=cmd|calc"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    # Applying only the valid rows: the result keeps the errors and the same report.
    page.get_by_label("Apply the valid rows, leave the invalid ones").check()
    page.get_by_role("button", name="Apply this file").click()
    expect(page.locator(".status-line")).to_contain_text("Applied")
    expect(page.locator("ul.counts")).to_contain_text("1 added")
    expect(page.locator("table.issues").first).to_contain_text("CSV_EMAIL")
    again = error_report_rows(page, "Download the error report (CSV)")
    assert again == rows


def test_an_unreadable_file_is_refused_and_nothing_is_kept(
    page: Page, server: Server, org: Org
) -> None:
    staged = Path(server.env["ROSTER_DATA_DIR"]) / "console-uploads"

    def staged_files() -> set[Path]:  # other tests' previews share the server
        return {p for p in staged.rglob("*") if p.is_file()}

    before = staged_files()
    sign_in(page, org)
    upload(page, b"CSV_USERNAME,CSV_FIRSTNAME,CSV_SURNAME\r\njanj,Jan,Jansen\r\n")
    expect(page.get_by_role("alert")).to_contain_text("cannot be read")
    expect(page.get_by_role("alert")).to_contain_text("comma")
    expect(page).to_have_url(re.compile(r"/uploads$"))
    # Nothing kept: no staged file on the server, no import in the history, no user.
    assert staged_files() == before
    assert json.loads(server.roster("imports", "list", "--tenant", org.slug, "--json")) == []
    found = json.loads(server.roster("users", "list", "--tenant", org.slug, "--json"))
    assert [u["username"] for u in found] == [org.admin_email.split("@")[0]]


def test_the_template_downloads(page: Page, org: Org) -> None:
    sign_in(page, org)
    page.goto("/uploads/new")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the template").click()
    assert download.value.suggested_filename == "flexwhere - users.csv"
    assert Path(download.value.path()).read_text().startswith('"CSV_USERNAME";')


def test_a_large_preview_leads_with_its_decision_and_lists_are_sorted_collapsed_and_searchable(
    page: Page, server: Server, org: Org, tmp_path: Path
) -> None:
    seed(server, org, tmp_path, 40)  # 0-39; the file keeps 20-39 (changed) and adds 300
    rows = [user_row(n, "Facilities") for n in range(20, 40)]
    rows += [user_row(n) for n in reversed(range(100, 400))]  # added, in reverse order
    sign_in(page, org)
    page.set_viewport_size({"width": 1280, "height": 800})
    upload(page, csv_file(*rows), mode="Replace the current user list")
    expect(page.get_by_role("heading", name=re.compile("Preview"))).to_be_visible()
    # The decision is on the first screen, not after 300 rows.
    apply = page.get_by_role("button", name="Apply this file")
    assert apply.bounding_box()["y"] < 800  # type: ignore[index]
    expect(page.get_by_label(re.compile("Yes, remove these 20 users"))).to_be_visible()
    screenshot(page, "upload-preview-large")
    # The removals to confirm are open; a list longer than a screenful is collapsed, the count
    # in its heading.
    expect(page.get_by_role("region", name="To be removed").locator("tbody tr")).to_have_count(20)
    added = page.get_by_role("region", name="To be added")
    expect(added.get_by_role("heading")).to_contain_text("300")
    expect(added.locator("table")).not_to_be_visible()
    added.get_by_role("heading").click()
    expect(added.locator("table")).to_be_visible()
    usernames = added.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert usernames == sorted(usernames) and usernames[0] == "user100"
    assert len(usernames) == 300
    # Searching narrows every list and opens what matches.
    page.get_by_label(re.compile("Find a person")).fill("SURNAME25")
    page.get_by_role("button", name="Find").click()
    expect(added.get_by_role("heading")).to_contain_text("10 of 300")  # Surname250-259
    expect(added.locator("tbody tr td:nth-child(2)")).to_have_text(
        [f"user{n}" for n in range(250, 260)]
    )
    updated = page.get_by_role("region", name="To be updated")
    expect(updated.get_by_role("heading")).to_contain_text("1 of 20")
    expect(updated.locator("tbody tr")).to_contain_text(["user025"])
    removed = page.get_by_role("region", name="To be removed")
    expect(removed.get_by_role("heading")).to_contain_text("0 of 20")
    expect(removed).to_contain_text("Nobody here matches")
    # The search changed what is shown, not what applies.
    expect(page.locator("ul.counts")).to_contain_text("300 added")
    page.get_by_role("link", name="Show everyone").click()
    expect(added.get_by_role("heading")).to_contain_text("300")
    expect(added.locator("table")).not_to_be_visible()
