"""The console's preview, import page and error reports of a file whose problems multiply (one
placeholder e-mail address on thousands of rows), over HTTP on both databases: httpx against the
app, outside tests/console, whose sync Playwright owns the event loop."""

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from roster.domain.error_report import HEADER, NOT_LISTED
from roster.domain.fields import FIELDS
from roster.jobs import people
from roster.settings import Settings
from roster.store import admins, sessions
from roster.store.db import writing
from roster.web.app import create_app
from roster.web.console.common import COOKIE, csrf_token
from tests.factories import csv_bytes, person

ROWS = 5000
LEFT_OUT = "Only the first 1,000 of 5,000 problems are listed"


@pytest.fixture
async def console(engine, tenant, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client signed in to the console as the organization's admin, and its CSRF token."""
    row = person(999_999, CSV_EMAIL="fm@example.com")
    values = {f.name: row[f.column] for f in FIELDS}
    added = await people.add(engine, tenant.id, values, channel="cli", actor="t", role="admin")
    assert added.user_id is not None
    async with writing(engine) as conn:
        await admins.set_password(conn, tenant.id, added.user_id, "not-a-real-hash")
        _, token = await sessions.create(
            conn, tenant.id, added.user_id, "console", timedelta(hours=1)
        )
    app = create_app(engine, settings=Settings(data_dir=tmp_path / "var"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://roster", cookies={COOKIE: token}
    ) as client:
        yield client, csrf_token(token)


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))


async def test_a_file_of_repeated_addresses_previews_small_and_says_how_many(console) -> None:
    client, csrf = console
    data = csv_bytes([person(n, CSV_EMAIL="placeholder@example.com") for n in range(ROWS)])
    sent = await client.post(
        "/uploads",
        data={"mode": "add", "csrf": csrf},
        files={"file": ("export.csv", data, "text/csv")},
    )
    assert sent.status_code == 303, sent.text
    preview_url = sent.headers["location"]

    preview = await client.get(preview_url)
    assert preview.status_code == 200
    assert len(preview.content) < len(data) / 2  # a thousand short rows, never one per pair
    assert "5,000 problem(s) in the file" in preview.text and LEFT_OUT in preview.text
    assert preview.text.count("<code>duplicate_email</code>") == 1000
    assert "the same as on row 3: 5,000 rows share this e-mail address" in preview.text
    assert "… and 4,000 more, not listed." in preview.text

    report = await client.get(f"{preview_url}/errors.csv")
    assert report.status_code == 200 and len(report.content) < len(data) / 4
    listed = rows_of(report.text)
    assert listed[0] == list(HEADER) and len(listed) == 1 + 1000 + 1
    assert listed[-1][2] == NOT_LISTED and LEFT_OUT in listed[-1][3]

    upload_id = preview_url.rsplit("/", 1)[1]
    applied = await client.post("/uploads/apply", data={"upload": upload_id, "csrf": csrf})
    assert applied.status_code == 303
    for _ in range(600):
        progress = (await client.get(f"/uploads/{upload_id}/progress.json")).json()
        if progress["finished"]:
            break
        await asyncio.sleep(0.05)
    assert progress["next"] and not progress["failed"], progress
    page = await client.get(progress["next"])
    assert "Rejected" in page.text and LEFT_OUT in page.text
    assert page.text.count("<code>duplicate_email</code>") == 1000
    assert len(page.content) < len(data) / 2
    import_id = re.search(r"/imports/([0-9a-f-]{36})", progress["next"])
    assert import_id is not None
    kept = rows_of((await client.get(f"/imports/{import_id[1]}/errors.csv")).text)
    assert len(kept) == 1 + 1000 + 1 and LEFT_OUT in kept[-1][3]
    history = await client.get("/imports")
    assert "<td>5,000</td>" in history.text


async def test_a_preview_is_planned_once_for_its_searches(console, monkeypatch) -> None:
    from roster.web.console import uploads

    client, csrf = console
    data = csv_bytes([person(n, CSV_FIRSTNAME="Zoë" if n == 7 else "Jan") for n in range(300)])
    sent = await client.post(
        "/uploads", data={"mode": "add", "csrf": csrf},
        files={"file": ("export.csv", data, "text/csv")},
    )  # fmt: skip
    url = sent.headers["location"]
    planned: list[bool] = []
    real = uploads.run_import

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        planned.append(kwargs["dry_run"])
        return await real(*args, **kwargs)

    monkeypatch.setattr(uploads, "run_import", counted)
    assert (await client.get(url)).status_code == 200
    for wanted in ("user000001", "ZOË", "nobody"):  # a first name is searched too
        page = (await client.get(url, params={"q": wanted})).text
        assert ("user000007" in page) == (wanted == "ZOË")
    assert planned == [True]  # the preview's dry run served every search
    assert (await client.get(url)).status_code == 200
    assert planned == [True, True]  # the preview itself plans afresh
