"""`/app/v1/sign-in/code` answers before anything depends on the address (who gets a code, its
row, its mail come after), so neither the answer nor its timing says who exists; its rate limit
counts every spelling of one address as that address."""

import asyncio
import logging

import httpx
import pytest

from roster import mail
from roster.jobs import code_mail
from roster.settings import Settings
from roster.store import sign_in_codes
from roster.web.app import create_app
from tests.app.test_access import addr, staff  # noqa: F401

CODE = "/app/v1/sign-in/code"


def _client(app, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://roster")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "var", app_sign_in_attempts_per_minute=50)


@pytest.fixture
def held_issue(monkeypatch):
    """The store's code write waits until the event is set."""
    release = asyncio.Event()
    issue = sign_in_codes.issue

    async def waiting(conn, recipient):
        await release.wait()
        return await issue(conn, recipient)

    monkeypatch.setattr(sign_in_codes, "issue", waiting)
    return release


async def test_the_answer_does_not_depend_on_the_address(engine, settings, staff):  # noqa: F811
    app = create_app(engine, settings=settings)
    bodies = [
        {"email": addr(staff, 1)},
        {"email": "nobody@example.com"},
        {"email": addr(staff, 2), "organization": staff.slug},
        {"email": "nobody@example.com", "organization": staff.slug},
        {"email": addr(staff, 3), "organization": "no-such-organization"},
    ]
    async with _client(app) as client:
        answers = [await client.post(CODE, json=body) for body in bodies]
    await app.state.code_mail.drained()
    # Every answer has its own X-Request-ID, whatever it answers: the rest must be the same.
    headers = [sorted((k, v) for k, v in a.headers.items() if k != "x-request-id") for a in answers]
    seen = {(a.status_code, a.content, tuple(h)) for a, h in zip(answers, headers, strict=True)}
    assert len(seen) == 1 and answers[0].status_code == 202
    assert sorted(m["to"] for m in mail.outbox(settings)) == [addr(staff, 1), addr(staff, 2)]


async def test_the_answer_waits_for_no_database_write(engine, settings, staff, held_issue):  # noqa: F811
    app = create_app(engine, settings=settings)
    async with _client(app) as client:
        answer = await asyncio.wait_for(client.post(CODE, json={"email": addr(staff, 4)}), 5)
    assert answer.status_code == 202
    await asyncio.sleep(0.1)
    assert mail.outbox(settings) == []  # the code's row is still waiting to be written
    held_issue.set()
    await app.state.code_mail.drained()
    assert [m["to"] for m in mail.outbox(settings)] == [addr(staff, 4)]


async def test_a_full_queue_drops_requests_and_says_so(
    engine,
    settings,
    staff,  # noqa: F811
    held_issue,
    monkeypatch,
    caplog,
):
    monkeypatch.setattr(code_mail, "QUEUE", 2)
    app = create_app(engine, settings=settings)
    async with _client(app) as client, asyncio.timeout(10):
        with caplog.at_level(logging.WARNING, "roster.app"):
            answers = [await client.post(CODE, json={"email": addr(staff, n)}) for n in range(10)]
    assert {a.status_code for a in answers} == {202}
    assert "a sign-in code request was dropped" in caplog.text
    held_issue.set()
    await app.state.code_mail.drained()
    sent = len(mail.outbox(settings))
    assert code_mail.QUEUE <= sent <= code_mail.QUEUE + code_mail.WORKERS


async def test_every_spelling_of_an_address_shares_its_limit(engine, staff, tmp_path):  # noqa: F811
    settings = Settings(data_dir=tmp_path / "var", app_sign_in_attempts_per_minute=3)
    app = create_app(engine, settings=settings)
    spellings = ["shared@example.com", "SHARED@example.com", "ſhared@example.com"]
    for n, email in enumerate(spellings):  # each from an address of its own
        async with _client(app, f"10.0.0.{n}") as client:
            assert (await client.post(CODE, json={"email": email})).status_code == 202
    async with _client(app, "10.0.1.1") as client:
        late = await client.post(CODE, json={"email": " Shared@Example.com "})
        other = await client.post(CODE, json={"email": "other@example.com"})
    assert late.status_code == 429 and other.status_code == 202
    await app.state.code_mail.drained()
