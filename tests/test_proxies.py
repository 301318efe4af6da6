"""X-Forwarded-For names the client only when the connecting address is a trusted proxy
(ROSTER_TRUSTED_PROXIES, none by default), so a header cannot dodge a per-address limit."""

import httpx
import pytest
from bench.loop_bench import serving

from roster.settings import Settings
from roster.web.app import create_app

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _codes(engine, settings: Settings, forwarded: list[str]) -> list[int]:
    """Ask for a sign-in code once per X-Forwarded-For value, each for another address."""
    app = create_app(engine, settings=settings)
    transport = httpx.ASGITransport(app=app)  # peer 127.0.0.1
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as http:
        answers = [
            (
                await http.post(
                    "/app/v1/sign-in/code",
                    json={"email": f"nobody{n}@example.com"},
                    headers={"X-Forwarded-For": address},
                )
            ).status_code
            for n, address in enumerate(forwarded)
        ]
    # Served after the answers: done before the test ends, which would leave the mailer's
    # transaction open (and the database locked) while the event loop waits for the next test.
    await app.state.code_mail.drained()
    return answers


async def test_a_forwarded_address_is_ignored_by_default(engine):
    settings = Settings(app_sign_in_attempts_per_minute=2)
    spoofed = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"]
    assert await _codes(engine, settings, spoofed) == [202, 202, 429, 429]


async def test_a_trusted_proxy_names_the_client(engine):
    settings = Settings(app_sign_in_attempts_per_minute=2, trusted_proxies="127.0.0.0/8")
    distinct = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "198.51.100.7, 127.0.0.1"]
    assert await _codes(engine, settings, distinct) == [202, 202, 202, 202]
    # The right-most address that is not a trusted proxy is the client, whatever came before.
    same = ["1.1.1.1, 203.0.113.9", "2.2.2.2, 203.0.113.9", "3.3.3.3, 203.0.113.9"]
    assert await _codes(engine, settings, same) == [202, 202, 429]


def test_roster_serve_trusts_no_proxy_by_default(database_url, tmp_path):
    with serving(database_url, tmp_path) as server, httpx.Client(base_url=server.url) as http:
        answers = [
            http.post(
                "/app/v1/sign-in/code",
                json={"email": f"nobody{n}@example.com"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            ).status_code
            for n in range(Settings().app_sign_in_attempts_per_minute + 1)
        ]
    assert answers[-1] == 429  # uvicorn's own default would believe a local peer's header


async def test_a_trusted_network_with_host_bits_names_the_client(engine):
    """uvicorn trusts nothing of a network written with host bits: Roster hands it the network."""
    assert Settings(trusted_proxies="10.0.0.5/24, ::1").proxies == ["10.0.0.0/24", "::1/128"]
    settings = Settings(app_sign_in_attempts_per_minute=2, trusted_proxies="127.0.0.9/8")
    distinct = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    assert await _codes(engine, settings, distinct) == [202, 202, 202]
