"""The Control Centre in a real browser: Debian's Chromium driven by Playwright, against a real
`roster serve` on a loopback port. Without /usr/bin/chromium these tests are skipped with a
message locally, and fail in CI (where `.ci/run` installs it)."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery staple"
ARTIFACTS = Path(os.environ.get("ROSTER_TEST_ARTIFACTS", "test-artifacts")) / "console"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"{CHROMIUM} is missing: CI must install Debian's chromium")
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: apt-get install chromium to run these")
    for item in items:
        if "tests/console/" in str(item.fspath):
            item.add_marker(skip)


@dataclass
class Server:
    url: str
    env: dict[str, str]

    def roster(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "roster", *args],
            env=self.env, input=stdin, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def organization(self, name: str = "Acme B.V.") -> "Org":
        slug = f"o-{uuid.uuid4().hex[:8]}"
        self.roster("tenant", "create", slug, "--name", name)
        email = f"fm@{slug}.example"
        self.roster(
            "admin", "create", "--tenant", slug, "--email", email,
            "--first-name", "Fiona", "--surname", "Manager", stdin=PASSWORD + "\n",
        )  # fmt: skip
        return Org(slug, email)


@dataclass
class Org:
    slug: str
    admin_email: str


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `roster serve` for the browser tests (SQLite: the console's SQL is the same on both,
    and the store's tests cover PostgreSQL)."""
    data = tmp_path_factory.mktemp("console")
    port = free_port()
    # The browser reaches the server as localhost, where Secure cookies work over plain HTTP:
    # also the address Roster gives out (the redirect URL an OpenID provider sends people to).
    url = f"http://localhost:{port}"
    env = os.environ | {
        "ROSTER_PUBLIC_URL": url,
        "ROSTER_DATA_DIR": str(data),
        "ROSTER_DATABASE_URL": f"sqlite:///{data / 'roster.db'}",
        "ROSTER_HTTP_PORT": str(port),
        "ROSTER_SFTP_PORT": str(free_port()),
        "ROSTER_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "roster", "serve"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=2)
            break
        except httpx.TransportError:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "roster serve did not start"
            time.sleep(0.2)
    yield Server(url, env)
    process.terminate()
    process.wait(timeout=30)


# Package scope: the sync API keeps an event loop running while it lives, and the async tests
# that run after these (tests/store) need none to be.
@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def org(server: Server) -> Org:
    return server.organization()


@pytest.fixture
def page(browser, server):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    yield page
    context.close()


def sign_in(page, org: Org, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    page.goto("/signin")
    page.get_by_label("Organization").fill(org.slug)
    page.get_by_label("E-mail address").fill(org.admin_email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
