"""A database that cannot serve now (SQLite's write lock held by another process beyond the
busy timeout, or PostgreSQL unreachable) is a 503 with Retry-After on the console and the app
API, as on SCIM, and one log line without a traceback; the CLI ends with one line."""

import logging
import sqlite3
import uuid

import httpx
import pytest

from roster.domain.passwords import hash_password
from roster.jobs import people
from roster.settings import Settings
from roster.store import admins, db
from roster.store.db import create_engine, dispose, writing
from roster.web.app import create_app
from tests.conftest import free_port

PASSWORD = "correct horse battery staple"
HTML = {"Accept": "text/html"}


async def _admin(engine, tenant) -> str:
    """An admin of the organization (by e-mail address), with PASSWORD."""
    email = f"fm@{tenant.slug}.example"
    raw = {"username": "fm", "first_name": "Fi", "surname": "Manager",
           "display_name": "Fi Manager", "email": email}  # fmt: skip
    added = await people.add(engine, tenant.id, raw, channel="cli", actor="t", role="admin")
    assert added.user_id is not None
    async with writing(engine) as conn:
        await admins.set_password(conn, tenant.id, added.user_id, hash_password(PASSWORD))
    return email


async def _sign_in(client: httpx.AsyncClient, organization: str, email: str) -> httpx.Response:
    await client.get("/signin", headers=HTML)
    form = {"organization": organization, "email": email, "password": PASSWORD,
            "form_token": client.cookies["roster_signin"]}  # fmt: skip
    return await client.post("/signin", data=form, headers=HTML)


def _told_to_come_back(answer: httpx.Response) -> None:
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == str(db.RETRY_AFTER_SECONDS)


def _logged_one_line(caplog: pytest.LogCaptureFixture) -> None:
    lines = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert lines and all(r.exc_info is None for r in caplog.records)
    assert all(r.levelno < logging.ERROR for r in caplog.records)


async def test_a_write_lock_held_too_long_elsewhere_is_503_on_the_console_and_app_api(
    engine, tenant, tmp_path, monkeypatch, caplog
):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    email = await _admin(engine, tenant)
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)
    waiting = create_engine(str(engine.url))  # its connections give up after 0.2 s
    settings = Settings(data_dir=tmp_path, console_secure_cookies=False)
    transport = httpx.ASGITransport(app=create_app(waiting, settings=settings))
    other = sqlite3.connect(engine.url.database, isolation_level=None)  # a CLI import, say
    other.execute("BEGIN IMMEDIATE")
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
            page = await _sign_in(client, tenant.slug, email)  # writes the session: waits
            code = await client.post("/app/v1/sign-in/code", json={"email": email})
            token = await client.post(
                "/app/v1/sign-in/token", json={"email": email, "code": "123456"}
            )
            await transport.app.state.code_mail.drained()  # type: ignore[attr-defined]
            other.rollback()
            assert (await _sign_in(client, tenant.slug, email)).status_code == 303  # lock gone
    finally:
        other.close()
        await dispose(waiting)
    _told_to_come_back(page)
    assert "The directory is busy" in page.text and "Nothing was changed" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert code.status_code == 202  # answered before any database work, as always
    _told_to_come_back(token)
    assert token.json() == {
        "detail": "The directory is busy or unreachable; try again in a moment."
    }
    _logged_one_line(caplog)


async def test_an_unreachable_database_is_503_on_the_console_and_app_api(tmp_path, caplog):
    engine = create_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/roster")
    settings = Settings(data_dir=tmp_path, console_secure_cookies=False)
    transport = httpx.ASGITransport(app=create_app(engine, settings=settings))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
            signing_in = await _sign_in(client, "acme", "fm@acme.example")
            client.cookies.set("roster_console", f"{uuid.uuid4()}.{'x' * 43}")
            users_page = await client.get("/users", headers=HTML)
            code = await client.post("/app/v1/sign-in/code", json={"email": "a@acme.example"})
            token = await client.post(
                "/app/v1/sign-in/token", json={"email": "a@acme.example", "code": "123456"}
            )
            await transport.app.state.code_mail.drained()  # type: ignore[attr-defined]
            refresh = await client.post("/app/v1/token/refresh", json={"refresh_token": "x"})
    finally:
        await dispose(engine)
    for page in (signing_in, users_page):
        _told_to_come_back(page)
        assert "The directory is busy" in page.text
    assert code.status_code == 202
    for answer in (token, refresh):
        _told_to_come_back(answer)
        assert "try again in a moment" in answer.json()["detail"]
    _logged_one_line(caplog)


def test_the_classification_names_what_passes(tmp_path):
    """What is and is not 'unavailable': a busy lock, a lost connection; not a refused
    value."""
    busy = sqlite3.connect(tmp_path / "x.db", timeout=0, isolation_level=None)
    holder = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as locked:
        busy.execute("BEGIN IMMEDIATE")
    holder.close()
    with pytest.raises(sqlite3.IntegrityError) as clash:
        busy.execute("CREATE TABLE t (a UNIQUE)")
        busy.execute("INSERT INTO t VALUES (1), (1)")
    busy.close()
    assert db.unavailable(locked.value) and not db.unavailable(clash.value)
    assert db.unavailable(ConnectionRefusedError()) and not db.unavailable(ValueError())
    assert "INSERT" not in str(db.unavailable_error(clash.value))
