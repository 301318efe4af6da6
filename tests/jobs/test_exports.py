"""The downloads on both databases: the user list is the template's file, and a replace with it
changes nothing; the audit log and the import history as CSV, with their filters, every row once
across keyset pages, times in the organization's zone, no cell a spreadsheet would run."""

import codecs
import csv
import io
import re
import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from roster.domain import csv_export, csvfile, user_list
from roster.domain.mode import Mode
from roster.domain.passwords import hash_password
from roster.domain.plan import Addition, Plan, new_user
from roster.jobs import exports, people
from roster.jobs import imports as import_jobs
from roster.store import audit, directory, directory_reads, keyset, tenants
from roster.store import imports as store_imports
from roster.store.db import writing
from roster.web.console.common import LABELS

ZONE = ZoneInfo("Europe/Amsterdam")
BY = {"channel": "console", "actor": "fm@example.com"}
LOCAL_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+0[12]:00")

# The template's columns, a row each: the values a spreadsheet would run, `;` and `"`, letters
# beyond ASCII, empty optional fields, and values at the template's limits.
TRICKY = [
    ["=jan", "Jan", "Jansen", "Jansen, Jan", "@home", "+31 6 12345678", "-0612345678",
     "-Facilities", "jan@example.com", "1", "0", "jan.jpg"],
    ["ørsted", "Søren", "Ørsted", 'Søren "S" Ørsted', "", "", "", "Sales; North",
     "søren@example.dk", "", "", ""],
    ["quote", "'=quoted", "van 't Hoff", "'+1 display", "'@title", "", "", "''-Twice",
     "o'hoff@example.com", "0", "1", ""],
    ["wang", "王伟", "Nguyễn Thị", "王伟 Nguyễn", "Ingenieur", "(020) 123.45/67", "",
     "Zorg & Welzijn", "wang@example.cn", "", "1", "https://cdn.example.org/p/wang.png"],
    ["x" * 50, "F" * 50, "S" * 50, "D" * 20, "T" * 20, "+" + "1" * 19, "1" * 20, "d" * 50,
     "long@example.com", "1", "1", "https://example.org/" + "p" * 480],
    ["inactive", "Ina", "Actief", "Ina Actief", "", "", "", "", "ina@example.com", "0", "", ""],
    ["boss", "Bea", "Baas", "Bea Baas", "Director", "", "", "", "bea@example.com", "", "", ""],
    ["leaver", "Lea", "Ver", "Lea Ver", "", "", "", "", "lea@example.com", "", "", ""],
]  # fmt: skip


async def collected(chunks) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def cells(data: bytes) -> list[list[str]]:
    assert data.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


async def directory_of(engine, tenant) -> dict[str, tuple]:
    async with engine.connect() as conn:
        found = await directory_reads.load_current(conn, tenant.id)
    return {
        u.values["username"]: (u.id, u.values, u.managed_by, u.version, u.removed) for u in found
    }


async def seeded(engine, tenant) -> None:
    """The tricky users (a file, written as Roster writes one), a console user, an inactive
    one, an admin, a removed one, and a SCIM user whose display name no template could hold."""
    data = csv_export.encoded([user_list.COLUMNS, *TRICKY], first=True)
    report = await import_jobs.run_import(
        engine, tenant.slug, data, mode=Mode.ADD, channel="csv", actor="fm@example.com"
    )
    assert report.counts["added"] == len(TRICKY) and not report.issues, report.issues
    added = await people.add(
        engine, tenant.id,
        {"username": "console", "first_name": "Con", "surname": "Sole", "display_name": "Con",
         "email": "con@example.com", "phone": "-1"},
        **BY,
    )  # fmt: skip
    assert added.ok
    ids = {name: user[0] for name, user in (await directory_of(engine, tenant)).items()}
    assert (await people.change(engine, tenant.id, ids["inactive"], {"active": False}, **BY)).ok
    boss = await people.set_role(
        engine, tenant.id, ids["boss"], hash_password("pw1234567890"), **BY
    )
    assert boss.ok
    assert (await people.remove(engine, tenant.id, ids["leaver"], **BY)).ok
    scim = new_user({
        "username": "entra@example.com", "first_name": "Entra", "surname": "Id",
        "display_name": "A display name far longer than the template's twenty characters",
        "email": "entra@example.com",
    })  # fmt: skip
    async with writing(engine) as conn:
        plan = Plan(added=[Addition(None, scim, managed_by="scim")])
        await directory.apply(conn, tenant.id, plan, channel="scim", actor="scim token entra")


async def test_the_user_list_is_the_template_s_file_and_a_replace_with_it_changes_nothing(
    engine, tenant
):
    await seeded(engine, tenant)
    before = await directory_of(engine, tenant)
    data = await collected(exports.user_file(engine, tenant.id))

    text = data.decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0] == csvfile.template().split("\r\n")[0] and lines[-1] == ""
    assert all(re.fullmatch(r'"([^"]|"")*"(;"([^"]|"")*")*', line) for line in lines[:-1])
    rows = cells(data)
    usernames = [row[0] for row in rows[1:]]
    # Every present user a file manages, by username; not the removed one nor SCIM's.
    assert sorted(usernames) == sorted(
        "'=jan" if name == "=jan" else name
        for name, (_, _, managed_by, _, removed) in before.items()
        if not removed and managed_by != "scim"
    )
    assert "leaver" not in usernames and "entra@example.com" not in usernames
    by_name = {row[0]: dict(zip(user_list.COLUMNS, row, strict=True)) for row in rows[1:]}
    jan = by_name["'=jan"]
    assert (jan["CSV_PHONE"], jan["CSV_MOBILE"], jan["CSV_DEPARTMENT"], jan["CSV_TITLE"]) == (
        "'+31 6 12345678", "'-0612345678", "'-Facilities", "'@home",
    )  # fmt: skip
    assert (jan["CSV_EHBO"], jan["CSV_BHV"]) == ("1", "0")
    assert by_name["quote"]["CSV_FIRSTNAME"] == "''=quoted"  # one quote more than stored
    assert by_name["quote"]["CSV_DEPARTMENT"] == "'''-Twice"
    assert by_name["ørsted"]["CSV_DISPLAYNAME"] == 'Søren "S" Ørsted'
    assert by_name["ørsted"]["CSV_EHBO"] == "" and by_name["ørsted"]["CSV_TITLE"] == ""
    assert by_name["console"]["CSV_PHONE"] == "'-1"

    report = await import_jobs.run_import(
        engine, tenant.slug, data, mode=Mode.REPLACE, channel="csv", actor="fm@example.com",
        file_name=user_list.FILE_NAME,
    )  # fmt: skip
    assert report.status == "applied"
    assert report.counts == {
        "added": 0, "updated": 0, "removed": 0, "unchanged": len(rows) - 1, "invalid": 0,
    }  # fmt: skip
    assert report.problems.error_total == 0 and report.problems.warning_total == 0
    # Every user as they were: values, active, role (the admin still one), channel, version.
    assert await directory_of(engine, tenant) == before
    assert before["boss"][1]["role"] == "admin" and before["inactive"][1]["active"] is False
    assert before["quote"][1]["first_name"] == "'=quoted"
    assert before["x" * 50][1]["profile_photo"] == "https://example.org/" + "p" * 480


async def test_the_user_list_of_an_organization_without_users_is_the_header(engine, tenant):
    data = await collected(exports.user_file(engine, tenant.id))
    assert data == codecs.BOM_UTF8 + csvfile.template().split("\r\n")[0].encode() + b"\r\n"


async def test_a_large_list_is_read_whole_then_handed_out_in_username_order(engine, tenant):
    count = directory_reads.CHUNK * 2 + 5
    rows = [
        [f"u{n:05d}", "Jan", "Jansen", "Jan", "", "", "", "", f"u{n}@example.com", "", "", ""]
        for n in reversed(range(count))
    ]
    data = csv_export.encoded([user_list.COLUMNS, *rows], first=True)
    await import_jobs.run_import(engine, tenant.slug, data, mode=Mode.ADD, channel="csv", actor="t")
    handed = exports.user_file(engine, tenant.id)
    first = await anext(handed)
    # The list was read whole before its first part went out: a client that stalls now holds
    # no connection (nor its snapshot).
    assert engine.pool.checkedout() == 0
    chunks = [first, *[chunk async for chunk in handed]]
    assert [row[0] for row in cells(b"".join(chunks))[1:]] == sorted(r[0] for r in rows)


async def other_organization(engine):
    async with writing(engine) as conn:
        other = await tenants.create(conn, f"o-{uuid.uuid4().hex[:10]}", "Other")
    row = ["stranger", "Str", "Anger", "Stranger", "", "", "", "", "s@example.com", "", "", ""]
    data = csv_export.encoded([user_list.COLUMNS, row], first=True)
    await import_jobs.run_import(engine, other.slug, data, mode=Mode.ADD, channel="cli", actor="x")
    return other


async def test_the_audit_log_file_has_a_row_per_changed_field_across_keyset_pages(
    engine, tenant, monkeypatch
):
    other = await other_organization(engine)
    monkeypatch.setattr(keyset, "PAGE", 3)  # an import's events share one time: pages cut it
    await seeded(engine, tenant)
    moved = [[*TRICKY[0][:4], "Boss", *TRICKY[0][5:7], "-Moved", *TRICKY[0][8:]]]
    data = csv_export.encoded([user_list.COLUMNS, *moved], first=True)
    await import_jobs.run_import(
        engine, tenant.slug, data, mode=Mode.ADD, channel="csv", actor="fm"
    )

    rows = cells(
        await collected(exports.audit_file(engine, tenant.id, audit.Filter(), ZONE, LABELS))
    )
    assert tuple(rows[0]) == exports.AUDIT_HEADER
    async with engine.connect() as conn:
        shown, older = await audit.search(conn, tenant.id, audit.Filter(), ZONE)
    assert not older
    # Every event once, in the console's order (newest first, then by id).
    events = list(dict.fromkeys(row[-1] for row in rows[1:]))
    assert events == [str(e.id) for e in shown]
    assert all(LOCAL_TIME.fullmatch(row[0]) for row in rows[1:])
    assert "stranger" not in {row[4] for row in rows[1:]}
    # The update: one row per field, by label, before and after, neutralized.
    updated = [row for row in rows[1:] if row[3] == "updated" and row[4] == "'=jan"]
    assert [row[5:8] for row in updated] == [
        ["Job title", "'@home", "Boss"],
        ["Department", "'-Facilities", "'-Moved"],
    ]
    assert updated[0][-1] == updated[1][-1] and updated[0][1:3] == ["csv", "fm"]
    added = [row for row in rows[1:] if row[3] == "added" and row[4] == "boss"]
    assert ["First aider (EHBO)", "", ""] not in [row[5:8] for row in added]  # no value: no row
    assert ["Display name", "", "Bea Baas"] in [row[5:8] for row in added]
    role = [row[5:8] for row in rows[1:] if row[3] == "updated" and row[4] == "boss"]
    assert role == [["Role", "user", "admin"]]
    assert ["Active", "yes", "no"] in [
        row[5:8] for row in rows[1:] if row[4] == "inactive" and row[3] == "updated"
    ]
    # The other organization's file holds its own events only.
    theirs = cells(await collected(exports.audit_file(engine, other.id, audit.Filter(), ZONE, {})))
    assert {row[4] for row in theirs[1:]} == {"stranger"}


@pytest.mark.parametrize(
    ("wanted", "usernames"),
    [
        (audit.Filter(user="JAN"), {"'=jan"}),
        (audit.Filter(channel="scim"), {"entra@example.com"}),
        (audit.Filter(actor="scim token"), {"entra@example.com"}),
        (audit.Filter(channel="console", user="boss"), {"boss"}),
    ],
)
async def test_the_audit_log_file_keeps_the_page_s_filters(engine, tenant, wanted, usernames):
    await seeded(engine, tenant)
    rows = cells(await collected(exports.audit_file(engine, tenant.id, wanted, ZONE, LABELS)))
    assert {row[4] for row in rows[1:]} == usernames


async def import_at(engine, tenant, at: datetime, monkeypatch, *rows: list[str]) -> None:
    """An import whose events and record are written at `at`."""
    monkeypatch.setattr(directory, "now", lambda: at)
    monkeypatch.setattr(store_imports, "now", lambda: at)
    data = csv_export.encoded([user_list.COLUMNS, *rows], first=True)
    await import_jobs.run_import(engine, tenant.slug, data, mode=Mode.ADD, channel="csv", actor="t")
    monkeypatch.undo()


async def test_days_and_times_are_the_organization_s(engine, tenant, monkeypatch):
    """23:30 UTC on 1 March is 00:30 on 2 March in Amsterdam: the file names that time, with its
    offset, and the day filters count Amsterdam's days."""
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    await import_at(engine, tenant, late, monkeypatch, TRICKY[1])
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    await import_at(engine, tenant, summer, monkeypatch, TRICKY[3])

    async def days(since: date | None, until: date | None) -> set[tuple[str, str]]:
        wanted = audit.Filter(since=since, until=until)
        rows = cells(await collected(exports.audit_file(engine, tenant.id, wanted, ZONE, {})))
        return {(row[0], row[4]) for row in rows[1:]}

    march = {("2026-03-02 00:30:00+01:00", "ørsted")}
    july = {("2026-07-01 14:00:00+02:00", "wang")}
    assert await days(None, None) == march | july
    assert await days(date(2026, 3, 2), date(2026, 3, 2)) == march
    assert await days(None, date(2026, 3, 1)) == set()
    assert await days(date(2026, 3, 3), None) == july
    history = cells(await collected(exports.import_history_file(engine, tenant.id, ZONE)))
    assert [row[0] for row in history[1:]] == [
        "2026-07-01 14:00:00+02:00",
        "2026-03-02 00:30:00+01:00",
    ]


async def test_the_import_history_file_lists_every_import_newest_first(engine, tenant, monkeypatch):
    other = await other_organization(engine)
    monkeypatch.setattr(keyset, "PAGE", 2)
    reports = []
    for n in range(5):
        row = [f"user{n}", "Jan", "Jansen", "Jan", "", "", "", "", f"u{n}@example.com", "", "", ""]
        if n == 3:
            row[8] = "not an address"
        data = csv_export.encoded([user_list.COLUMNS, row], first=True)
        reports.append(
            await import_jobs.run_import(
                engine, tenant.slug, data, mode=Mode.ADD, channel="cli", actor="cli:ops",
                file_name=f"=people {n}.csv",
            )
        )  # fmt: skip
    rows = cells(await collected(exports.import_history_file(engine, tenant.id, ZONE)))
    assert tuple(rows[0]) == exports.IMPORTS_HEADER
    assert [row[-1] for row in rows[1:]] == [str(r.import_id) for r in reversed(reports)]
    by_id = {row[-1]: dict(zip(exports.IMPORTS_HEADER, row, strict=True)) for row in rows[1:]}
    first = by_id[str(reports[0].import_id)]
    assert LOCAL_TIME.fullmatch(first["time"])
    assert {k: first[k] for k in ("channel", "actor", "file", "mode", "status")} == {
        "channel": "cli", "actor": "cli:ops", "file": "'=people 0.csv", "mode": "add",
        "status": "applied",
    }  # fmt: skip
    assert [first[k] for k in (*exports.COUNTED, "errors", "warnings")] == [
        "1", "0", "0", "0", "0", "0", "0",
    ]  # fmt: skip
    rejected = by_id[str(reports[3].import_id)]
    assert (rejected["status"], rejected["added"], rejected["errors"]) == ("rejected", "0", "1")
    theirs = cells(await collected(exports.import_history_file(engine, other.id, ZONE)))
    assert len(theirs) == 2 and theirs[1][2] == "x"
