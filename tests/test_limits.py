"""Every request body is bounded before any work, in its channel's format, and no error echoes
the request back."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from roster.settings import Settings
from roster.store import scim_tokens, tenants
from roster.store.db import writing
from roster.web.app import create_app
from roster.web.limits import MULTIPART_ROOM
from roster.web.scim.errors import ERROR

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SMALL = Settings(max_form_bytes=4096, max_scim_bytes=8192, max_import_bytes=16384)


def client(engine, settings: Settings = SMALL) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(engine, settings=settings))
    return httpx.AsyncClient(transport=transport, base_url="http://roster")


async def chunks(total: int, size: int = 1000) -> AsyncIterator[bytes]:
    """A body sent without Content-Length, in pieces."""
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


async def test_a_scim_body_over_the_limit_is_refused_before_the_token_is_read(engine):
    async with client(engine) as http:
        answer = await http.post("/scim/v2/Users", content=b"{" + b" " * 9000 + b"}")
    assert answer.status_code == 413  # not 401: nothing ran before the refusal
    body = answer.json()
    assert body["schemas"] == [ERROR] and body["status"] == "413"
    assert "8,192" in body["detail"] and len(answer.content) < 300


async def test_a_chunked_scim_body_is_counted_as_it_streams(engine):
    async with writing(engine) as conn:
        tenant = await tenants.create(conn, f"l-{uuid.uuid4().hex[:10]}", "Limits")
        _, token = await scim_tokens.create(conn, tenant.id, "entra-id")
    bearer = {"Authorization": f"Bearer {token}"}
    async with client(engine) as http:
        answer = await http.post("/scim/v2/Users", content=chunks(20_000), headers=bearer)
        within = await http.post("/scim/v2/Users", content=chunks(8000), headers=bearer)
    assert answer.status_code == 413 and answer.json()["schemas"] == [ERROR]
    assert b"xxxx" not in answer.content
    assert within.status_code == 400  # under the limit the request goes on as usual


async def test_the_app_api_answers_413_in_json(engine):
    async with client(engine) as http:
        declared = await http.post("/app/v1/sign-in/code", content=b"x" * 5000)
        streamed = await http.post("/app/v1/sign-in/code", content=chunks(5000))
    for answer in (declared, streamed):
        assert answer.status_code == 413
        assert "4,096" in answer.json()["detail"] and b"xxxx" not in answer.content


async def test_a_console_form_over_the_limit_is_a_short_page(engine):
    form = {"email": "a" * 5000, "password": "p", "organization": "acme"}
    async with client(engine) as http:
        answer = await http.post("/signin", data=form)
    assert answer.status_code == 413 and answer.headers["content-type"].startswith("text/plain")
    assert "aaaa" not in answer.text and len(answer.content) < 200
    assert answer.headers["x-content-type-options"] == "nosniff"


async def test_an_upload_may_be_as_large_as_an_import_even_without_a_session(engine):
    limit = SMALL.max_import_bytes + MULTIPART_ROOM
    async with client(engine) as http:
        over = await http.post(
            "/uploads", files={"file": ("users.csv", b"x" * limit)}, data={"mode": "add"}
        )
        fits = await http.post(
            "/uploads", files={"file": ("users.csv", b"x" * 12000)}, data={"mode": "add"}
        )
    assert over.status_code == 413
    assert fits.status_code != 413  # larger than a form, within an import: the session decides


async def test_a_validation_error_never_echoes_the_input(engine):
    hostile = "<script>alert(1)</script>" + "A" * 100_000
    settings = Settings(max_form_bytes=1024 * 1024)
    async with client(engine, settings) as http:
        answer = await http.post("/app/v1/sign-in/code", json={"email": hostile})
    assert answer.status_code == 422
    assert "<script>" not in answer.text and "AAAA" not in answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "email"]
    assert len(answer.content) < 500
