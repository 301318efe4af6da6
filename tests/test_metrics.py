"""/metrics: Roster's series after real traffic (SCIM, imports, a drop box's upload and pickup,
the app's sign-in, an unknown path), scraped and parsed as Prometheus would; and who may read
them (loopback and ROSTER_METRICS_ALLOWED, the client as a trusted proxy names it)."""

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import httpx
import pytest
from bench.loop_bench import serving
from prometheus_client.parser import text_string_to_metric_families

from roster import __version__, mail, scheduler, sftp
from roster.domain.mode import Mode
from roster.jobs.dropbox_files import Folders
from roster.jobs.imports import run_import
from roster.settings import Settings
from roster.store import dropboxes, scim_tokens, tenants
from roster.store import imports as imports_history
from roster.store.db import create_engine, writing
from roster.store.imports import ImportStatus
from roster.web import metrics as web_metrics
from roster.web.app import create_app
from tests.conftest import free_port
from tests.factories import csv_bytes, person
from tests.sftp.conftest import enable, make_key

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
FILE = "flexwhere - users.csv"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parsed(text: str) -> Samples:
    """Every sample of a scrape by its name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a series the scrape does not have (a counter not yet counted)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parsed(response.text)


def rows(slug: str, numbers: range) -> list[dict[str, str]]:
    return [person(n, CSV_EMAIL=f"user{n:06d}@{slug}.example") for n in numbers]


@pytest.fixture
async def organization(engine, tmp_path) -> AsyncIterator[dict[str, Any]]:
    """An organization with a SCIM token and a drop box (picked up on upload) that Roster's
    SFTP server, listening in this process, serves."""
    async with writing(engine) as conn:
        tenant = await tenants.create(conn, f"m-{uuid.uuid4().hex[:10]}", "Metrics")
        _, token = await scim_tokens.create(conn, tenant.id, "entra-id")
    settings = Settings(
        data_dir=tmp_path / "var",
        sftp_port=free_port(),
        pickup_settle_seconds=0,
        app_sign_in_attempts_per_minute=50,
    )
    key = make_key(tmp_path / "uploader")
    await enable(engine, tenant, key)
    async with writing(engine) as conn:
        await dropboxes.configure(conn, tenant.id, process_on_upload=True)
    Folders.of(settings).prepare(tenant.slug)
    server = await sftp.start(engine, settings)
    yield {"tenant": tenant, "token": token, "settings": settings, "key": key}
    server.close()
    await server.wait_closed()


async def upload(organization: dict[str, Any], content: bytes, tmp_path) -> None:
    """The file arrives in the drop box as an uploader's script sends it, over SFTP."""
    source = tmp_path / "export.csv"
    source.write_bytes(content)
    settings, slug = organization["settings"], organization["tenant"].slug
    async with (
        asyncssh.connect(
            "127.0.0.1", settings.sftp_port, username=slug, known_hosts=None, agent_path=None,
            client_keys=[str(organization["key"])], password=None,
        ) as conn,
        conn.start_sftp_client() as client,
    ):  # fmt: skip
        await client.put(str(source), FILE)


async def picked_up(engine, organization: dict[str, Any]) -> None:
    """The scheduler's tick, once the server has recorded the upload."""
    tenant, settings = organization["tenant"], organization["settings"]
    for _ in range(100):
        async with engine.connect() as conn:
            if (await dropboxes.get(conn, tenant.id)).upload_pickup_at is not None:
                break
        await asyncio.sleep(0.05)
    assert await scheduler.run_due_pickups(engine, settings) == [tenant.slug]


async def test_the_series_after_real_traffic(engine, organization, tmp_path):
    tenant, settings = organization["tenant"], organization["settings"]
    slug = tenant.slug
    app = create_app(engine, settings=settings)
    transport = httpx.ASGITransport(app=app)  # from 127.0.0.1
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as http:
        before = await scrape(http)

        # SCIM: a create, a lookup, a read, a clash, and a request without a valid token.
        scim = {"Authorization": f"Bearer {organization['token']}"}
        body = {
            "schemas": [CORE], "userName": f"ada@{slug}.example", "displayName": "Ada Lovelace",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": f"ada@{slug}.example", "type": "work", "primary": True}],
        }  # fmt: skip
        created = await http.post("/scim/v2/Users", json=body, headers=scim)
        assert created.status_code == 201, created.text
        found = await http.get(
            "/scim/v2/Users", params={"filter": f'userName eq "ada@{slug}.example"'}, headers=scim
        )
        assert found.json()["totalResults"] == 1
        read = await http.get(f"/scim/v2/Users/{created.json()['id']}", headers=scim)
        assert read.status_code == 200
        assert (await http.post("/scim/v2/Users", json=body, headers=scim)).status_code == 409
        wrong = {"Authorization": "Bearer scim_nothing"}
        assert (await http.get("/scim/v2/Users", headers=wrong)).status_code == 401

        # Imports: a file applied, then a replace the deletion guard holds.
        people = csv_bytes(rows(slug, range(12)))
        added = await run_import(engine, slug, people, mode=Mode.ADD, channel="csv", actor="t")
        assert added.status == "applied"
        few = csv_bytes(rows(slug, range(2)))
        held = await run_import(engine, slug, few, mode=Mode.REPLACE, channel="csv", actor="t")
        assert held.status == "held"

        # The drop box: an upload over SFTP, which the scheduler picks up.
        await upload(organization, people, tmp_path)
        await picked_up(engine, organization)
        # A pickup the deletion guard held waits for an admin (the held CSV replace above
        # was refused, and waits for nobody: not counted).
        async with writing(engine) as conn:
            await imports_history.record(
                conn, import_id=uuid.uuid4(), tenant_id=tenant.id, channel="sftp",
                actor="sftp pickup (daily)", file_name=FILE, mode="replace",
                status=ImportStatus.HELD, counts={}, report={"held_reason": "too many"},
            )  # fmt: skip

        # The app: a code asked for, a wrong one entered, the right one.
        email = f"user000003@{slug}.example"
        asked = await http.post("/app/v1/sign-in/code", json={"email": email})
        assert asked.status_code == 202
        await app.state.code_mail.drained()
        [sent] = [m for m in mail.outbox(settings) if m["to"] == email]
        code = re.search(r"\b(\d{6})\b", sent["subject"])[1]  # type: ignore[index]
        wrong_code = "000000" if code != "000000" else "111111"
        refused = await http.post(
            "/app/v1/sign-in/token", json={"email": email, "code": wrong_code}
        )
        assert refused.status_code == 401
        signed = await http.post("/app/v1/sign-in/token", json={"email": email, "code": code})
        assert signed.status_code == 200

        # Paths no route serves: one series, whatever the path.
        for path in ("/no-such-page", f"/no-such-page/{uuid.uuid4()}", "/scim/v2/Nothing"):
            assert (await http.get(path)).status_code == 404

        after = await scrape(http)
    await app.state.provisioning_log.close()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # HTTP requests by route template, method and status.
    requests = "roster_http_request_duration_seconds_count"
    assert grew(requests, method="POST", route="/scim/v2/Users", status="201") == 1
    assert grew(requests, method="POST", route="/scim/v2/Users", status="409") == 1
    assert grew(requests, method="GET", route="/scim/v2/Users", status="200") == 1
    assert grew(requests, method="GET", route="/scim/v2/Users/{user_id}", status="200") == 1
    assert grew(requests, method="POST", route="/app/v1/sign-in/token", status="200") == 1
    assert grew(requests, method="POST", route="/app/v1/sign-in/token", status="401") == 1
    assert grew(requests, method="GET", route="unknown", status="404") == 3
    assert grew(requests, method="GET", route="/metrics", status="200") == 1  # the first scrape
    assert not [k for k in after if f"/{created.json()['id']}" in str(k)]  # never a raw path
    # A histogram: its slowest bucket holds every request, the sum their seconds.
    bucket = "roster_http_request_duration_seconds_bucket"
    labels = {"method": "POST", "route": "/scim/v2/Users", "status": "201"}
    assert value(after, bucket, **labels, le="+Inf") == value(after, requests, **labels)
    assert value(after, "roster_http_request_duration_seconds_sum", **labels) > 0

    # SCIM requests by organization and outcome.
    scim_requests = "roster_scim_requests_total"
    assert value(after, scim_requests, organization=slug, method="POST", outcome="ok") == 1
    assert value(after, scim_requests, organization=slug, method="GET", outcome="ok") == 2
    assert value(after, scim_requests, organization=slug, method="POST", outcome="refused") == 1
    assert grew(scim_requests, organization="", method="GET", outcome="unauthorized") == 1

    # Imports and pickups by channel and result, with their durations.
    assert (
        value(after, "roster_imports_total", organization=slug, channel="csv", result="applied")
        == 1
    )
    assert (
        value(after, "roster_imports_total", organization=slug, channel="csv", result="held") == 1
    )
    # The pickup's import is an import of the sftp channel; the file matched the directory.
    assert (
        value(after, "roster_imports_total", organization=slug, channel="sftp", result="applied")
        == 1
    )
    assert (
        value(after, "roster_pickups_total", organization=slug, trigger="upload", result="applied")
        == 1
    )
    assert grew("roster_import_duration_seconds_count", channel="csv", result="held") == 1
    assert grew("roster_pickup_duration_seconds_count", trigger="upload", result="applied") == 1
    assert grew("roster_pickup_duration_seconds_sum", trigger="upload", result="applied") > 0

    # The database's state when scraped: the held pickup, the file that just arrived.
    assert value(after, "roster_metrics_database_up") == 1
    assert value(after, "roster_imports_held", organization=slug) == 1
    assert value(before, "roster_imports_held", organization=slug) == 0
    age = value(after, "roster_dropbox_last_arrival_age_seconds", organization=slug)
    assert 0 <= age < 60

    # The app's sign-ins.
    assert grew("roster_app_sign_in_codes_requested_total", result="accepted") == 1
    assert grew("roster_app_sign_ins_total", result="wrong_code") == 1
    assert grew("roster_app_sign_ins_total", result="signed_in") == 1

    assert value(after, "roster_build_info", version=__version__) == 1


async def get(
    engine,
    settings: Settings,
    client: str,
    headers: dict[str, str] | None = None,
    path: str = "/metrics",
) -> httpx.Response:
    """GET a path of an app with these settings, from the client address given."""
    transport = httpx.ASGITransport(
        app=create_app(engine, settings=settings), client=(client, 5000)
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as http:
        return await http.get(path, headers=headers or {})


def hidden(response: httpx.Response, unknown: httpx.Response) -> bool:
    """A 404 that says no more than a path no route serves."""
    return (response.status_code, response.text) == (404, unknown.text)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_loopback_reads_them_and_any_other_address_meets_a_404(engine):
    settings = Settings()
    for loopback in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert (await get(engine, settings, loopback)).status_code == 200, loopback
    for other in ("203.0.113.7", "10.0.0.5", "192.168.1.20", "2001:db8::1", "testclient"):
        unknown = await get(engine, settings, other, path="/no-such-page")
        assert hidden(await get(engine, settings, other), unknown), other


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_addresses_a_setting_names_read_them(engine):
    settings = Settings(metrics_allowed="10.20.0.0/16, 192.0.2.7, 2001:db8::/32")
    for allowed in ("10.20.3.4", "192.0.2.7", "2001:db8::9", "127.0.0.1"):
        assert (await get(engine, settings, allowed)).status_code == 200, allowed
    for other in ("10.21.0.1", "192.0.2.8"):
        assert (await get(engine, settings, other)).status_code == 404, other
    with pytest.raises(ValueError, match="not an IP address or network"):
        Settings(metrics_allowed="prometheus.internal")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_behind_a_trusted_proxy_the_client_it_names_decides(engine):
    """A proxy on loopback passes a public request on: it is the public client's, not
    loopback's, whatever that client wrote in its own X-Forwarded-For."""
    proxied = Settings(trusted_proxies="127.0.0.1")
    unknown = await get(engine, proxied, "127.0.0.1", path="/no-such-page")
    for forwarded in ("198.51.100.9", "127.0.0.1, 198.51.100.9"):
        response = await get(engine, proxied, "127.0.0.1", {"X-Forwarded-For": forwarded})
        assert hidden(response, unknown), forwarded
    # A scraper on the proxy's own host asks directly; one the setting names may come through it.
    assert (await get(engine, proxied, "127.0.0.1")).status_code == 200
    named = Settings(trusted_proxies="127.0.0.1", metrics_allowed="198.51.100.9")
    response = await get(engine, named, "127.0.0.1", {"X-Forwarded-For": "198.51.100.9"})
    assert response.status_code == 200
    # An address that is not a trusted proxy names nobody but itself.
    response = await get(engine, named, "203.0.113.7", {"X-Forwarded-For": "198.51.100.9"})
    assert response.status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_through_a_proxy_nobody_named_every_visitor_meets_a_404(engine):
    """A proxy on this host that ROSTER_TRUSTED_PROXIES does not name: every visitor connects
    from loopback, and only the headers the proxy adds tell them apart."""
    settings = Settings()
    unknown = await get(engine, settings, "127.0.0.1", path="/no-such-page")
    for header, value in (
        ("X-Forwarded-For", "203.0.113.7"),
        ("Forwarded", "for=203.0.113.7"),
        ("X-Real-IP", "203.0.113.7"),
    ):
        response = await get(engine, settings, "127.0.0.1", {header: value})
        assert hidden(response, unknown), header


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_metrics_turned_off_are_a_404_to_everyone(engine, monkeypatch):
    monkeypatch.setenv("ROSTER_METRICS", "false")
    settings = Settings()
    assert settings.metrics is False
    unknown = await get(engine, settings, "127.0.0.1", path="/no-such-page")
    assert hidden(await get(engine, settings, "127.0.0.1"), unknown)


async def test_a_database_that_does_not_answer_leaves_out_only_its_state():
    dead = create_engine("postgresql://nobody@127.0.0.1:1/none")
    response = await get(dead, Settings(), "127.0.0.1")
    assert response.status_code == 200
    answer = parsed(response.text)
    assert value(answer, "roster_metrics_database_up") == 0
    assert not [name for name, _ in answer if name.startswith("roster_imports_held")]
    assert value(answer, "roster_build_info", version=__version__) == 1


async def test_a_slow_database_does_not_hold_up_the_scrape(engine, monkeypatch):
    async def slow(conn: Any) -> dict[str, int]:
        await asyncio.sleep(60)
        return {}

    monkeypatch.setattr(web_metrics, "STATE_SECONDS", 0.2)
    monkeypatch.setattr(web_metrics.imports, "held_by_organization", slow)
    started = time.monotonic()
    response = await get(engine, Settings(), "127.0.0.1")
    assert time.monotonic() - started < 5
    assert response.status_code == 200
    assert value(parsed(response.text), "roster_metrics_database_up") == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_roster_serve_serves_them(database_url, tmp_path):
    with serving(database_url, tmp_path) as server, httpx.Client(base_url=server.url) as http:
        scim = {"Authorization": f"Bearer {server.token}"}
        assert http.get("/scim/v2/Users", headers=scim).status_code == 200
        response = http.get("/metrics")
    assert response.status_code == 200
    answer = parsed(response.text)
    [organization] = {
        dict(labels)["organization"]
        for name, labels in answer
        if name == "roster_scim_requests_total"
    }
    assert organization.startswith("loop-")
    ok = {"organization": organization, "method": "GET", "outcome": "ok"}
    assert value(answer, "roster_scim_requests_total", **ok) == 1
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}  # serving() waited on it
    assert value(answer, "roster_http_request_duration_seconds_count", **healthz) >= 1
    assert value(answer, "process_resident_memory_bytes") > 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_request_that_fails_is_counted_with_its_500(engine, monkeypatch):
    def broken(*args: Any) -> str:
        raise RuntimeError("a failure nobody foresaw")

    monkeypatch.setattr("roster.web.appapi.account_key", broken)
    app = create_app(engine, settings=Settings())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as http:
        before = await scrape(http)
        response = await http.post("/app/v1/sign-in/code", json={"email": "a@example.com"})
        assert response.status_code == 500
        # A method HTTP does not define is one label, whatever its name.
        assert (await http.request("BREW", "/healthz")).status_code == 405
        after = await scrape(http)
    count = "roster_http_request_duration_seconds_count"
    failed = {"method": "POST", "route": "/app/v1/sign-in/code", "status": "500"}
    assert value(after, count, **failed) - value(before, count, **failed) == 1
    other = {"method": "other", "route": "/healthz", "status": "405"}
    assert value(after, count, **other) - value(before, count, **other) == 1
