"""The downloads in a browser: the user list (the template's file, which a replace through Add
user list reads back without a change), the audit log with the page's filters and the import
history, each a CSV file with its name and a byte-order mark; only the organization's own."""

import codecs
import csv
import io
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from roster.domain import csvfile
from tests.console.conftest import Org, Server, screenshot, sign_in
from tests.console.test_audit import add_scim_user
from tests.console.test_uploads import upload
from tests.factories import csv_bytes, person


def populate(server: Server, org: Org, tmp_path: Path) -> None:
    """Users from a file (values a spreadsheet would run, `;` and `"`, letters beyond ASCII,
    empty fields), one of them changed, and a user from SCIM."""
    rows = [
        person(1, CSV_PHONE="+31 6 12345678", CSV_DEPARTMENT="-Facilities"),
        person(2, CSV_FIRSTNAME="Zoë", CSV_DISPLAYNAME='Zoë "Z"; Ørsted', CSV_TITLE=""),
        person(3, CSV_USERNAME="@chris", CSV_MOBILE="", CSV_EHBO="", CSV_PROFILEPHOTO=""),
    ]
    file = tmp_path / "users.csv"
    file.write_bytes(csv_bytes(rows))
    server.roster("import", str(file), "--tenant", org.slug, "--mode", "add", "--quiet")
    rows[0]["CSV_TITLE"] = "=Director"
    file.write_bytes(csv_bytes(rows))
    server.roster("import", str(file), "--tenant", org.slug, "--mode", "add", "--quiet")
    add_scim_user(server, org)


def download(page: Page, link: str, name: str) -> bytes:
    """Click the link; the file the browser saves, checked for its suggested name and BOM."""
    with page.expect_download() as started:
        page.get_by_role("link", name=link).click()
    assert started.value.suggested_filename == name
    data = Path(started.value.path()).read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    return data


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


def test_the_user_list_downloads_and_a_replace_with_it_changes_nothing(
    page: Page, server: Server, org: Org, tmp_path: Path
) -> None:
    populate(server, org, tmp_path)
    sign_in(page, org)
    page.goto("/users")
    button = page.get_by_role("link", name="Download the user list")
    expect(button).to_be_visible()
    screenshot(page, "users-download")
    data = download(page, "Download the user list", "flexwhere - users.csv")
    text = data.decode("utf-8-sig")
    assert text.split("\r\n")[0] == csvfile.template().split("\r\n")[0]
    rows = rows_of(data)
    admin = org.admin_email.split("@")[0]
    # Everyone a file manages, by username (the admin made on the command line too), not the
    # user SCIM manages; cells a spreadsheet would run begin with a quote.
    assert [row[0] for row in rows[1:]] == ["'@chris", admin, "user000001", "user000002"]
    first = dict(zip(rows[0], rows[3], strict=True))
    assert (first["CSV_PHONE"], first["CSV_DEPARTMENT"], first["CSV_TITLE"]) == (
        "'+31 6 12345678", "'-Facilities", "'=Director",
    )  # fmt: skip
    second = dict(zip(rows[0], rows[4], strict=True))
    assert (second["CSV_DISPLAYNAME"], second["CSV_TITLE"]) == ('Zoë "Z"; Ørsted', "")
    assert "scimperson" not in text

    # The file as downloaded, replacing the user list: nothing to add, change or remove.
    upload(page, data, mode="Replace the current user list", name="flexwhere - users.csv")
    counts = page.locator("ul.counts")
    for count in ("0 added", "0 updated", "0 removed", "4 unchanged", "0 invalid rows"):
        expect(counts).to_contain_text(count)
    expect(page.locator("table.issues")).to_have_count(0)


def test_the_audit_log_downloads_with_the_page_s_filters(
    page: Page, server: Server, org: Org, tmp_path: Path
) -> None:
    populate(server, org, tmp_path)
    sign_in(page, org)
    page.goto("/audit")
    page.get_by_label("User").fill("user000001")
    page.get_by_label("Channel").select_option("cli")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.audit tbody tr")).to_have_count(2)
    data = download(page, "Download as CSV", "audit log.csv")
    rows = rows_of(data)
    assert rows[0] == [
        "time", "channel", "actor", "action", "username", "field", "before", "after", "event",
    ]  # fmt: skip
    events = {row[-1] for row in rows[1:]}
    assert len(events) == 2 and {row[4] for row in rows[1:]} == {"user000001"}
    assert {row[1] for row in rows[1:]} == {"cli"}
    updated = [row for row in rows[1:] if row[3] == "updated"]
    assert [row[5:8] for row in updated] == [["Job title", "Manager", "'=Director"]]
    added = {row[5]: row[7] for row in rows[1:] if row[3] == "added"}
    assert added["Phone"] == "'+31 6 12345678" and added["Department"] == "'-Facilities"
    # Unfiltered, every event of the organization: the SCIM user's too.
    page.goto("/audit")
    everything = rows_of(download(page, "Download as CSV", "audit log.csv"))
    assert "scimperson" in {row[4] for row in everything[1:]}


def test_the_import_history_downloads(page: Page, server: Server, org: Org, tmp_path: Path) -> None:
    populate(server, org, tmp_path)
    sign_in(page, org)
    page.goto("/imports")
    rows = rows_of(download(page, "Download as CSV", "imports.csv"))
    assert rows[0][:6] == ["time", "channel", "actor", "file", "mode", "status"]
    assert [(row[1], row[3], row[4], row[5]) for row in rows[1:]] == [
        ("cli", "users.csv", "add", "applied"),
        ("cli", "users.csv", "add", "applied"),
    ]
    newest, oldest = (dict(zip(rows[0], row, strict=True)) for row in rows[1:])
    assert (newest["added"], newest["updated"], newest["unchanged"]) == ("0", "1", "2")
    assert (oldest["added"], oldest["errors"]) == ("3", "0")


def test_downloads_are_for_the_organization_s_admins_only(
    page: Page, server: Server, org: Org, tmp_path: Path
) -> None:
    other = server.organization("Other B.V.")
    populate(server, other, tmp_path)
    for path in ("/users.csv", "/audit.csv", "/imports.csv"):  # no session: the sign-in page
        answer = httpx.get(f"{server.url}{path}", follow_redirects=False, timeout=10)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")
    sign_in(page, org)
    page.goto("/users")
    for path in ("/users.csv", "/audit.csv", "/imports.csv"):
        answer = page.request.get(path)
        assert answer.ok and answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.headers["cache-control"] == "no-store"
        text = answer.body().decode("utf-8-sig")
        assert "user000001" not in text and "scimperson" not in text and other.slug not in text
    assert page.request.get("/audit.csv?from=yesterday").status == 400
