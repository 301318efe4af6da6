"""/docs in a browser that can reach nothing but Roster: the Swagger UI loads from the server."""

from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.console.conftest import screenshot


def test_the_api_docs_work_without_internet(page, server):
    elsewhere: list[str] = []

    def only_roster(route):  # type: ignore[no-untyped-def]
        if urlsplit(route.request.url).hostname in ("localhost", "127.0.0.1"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_roster)
    page.goto("/docs")
    page.wait_for_timeout(2000)
    print(
        "ELSEWHERE",
        elsewhere,
        page.locator(".title").count(),
        page.locator("#swagger-ui").inner_text()[:300],
    )
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Roster")
    expect(page.get_by_text("/healthz").first).to_be_visible()
    expect(page.get_by_text("/app/v1/me").first).to_be_visible()
    screenshot(page, "api-docs")
    assert elsewhere == []
