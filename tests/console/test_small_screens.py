"""The console on a phone (390 CSS pixels wide): the pages an admin reads there never scroll
sideways as a whole; a wide table scrolls within itself."""

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import Org, Server, screenshot, sign_in
from tests.console.test_uploads import csv_file, seed, upload, user_row

WIDTH = 390


def page_width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_lists_previews_and_reports_fit_a_phone(
    page: Page, server: Server, org: Org, tmp_path: Path
) -> None:
    seed(server, org, tmp_path, 30)
    page.set_viewport_size({"width": WIDTH, "height": 844})
    sign_in(page, org)
    widths = {}
    for name, path in (("users", "/users"), ("audit", "/audit"), ("imports", "/imports"),
                       ("integrations", "/integrations"), ("settings", "/settings")):  # fmt: skip
        page.goto(path)  # returns once the page and its stylesheet have loaded
        widths[name] = page_width(page)
        screenshot(page, f"phone-{name}")
    upload(
        page,
        csv_file(
            *(user_row(n, "A department with a rather long name") for n in range(25, 40)),
            'bad;"row"',
        ),
    )
    expect(page.get_by_role("heading", name=re.compile("Preview"))).to_be_visible()
    page.wait_for_load_state("load")  # measured with its stylesheet applied
    widths["preview"] = page_width(page)
    screenshot(page, "phone-preview")
    page.goto("/users")
    page.get_by_role("link", name="user000").click()
    page.wait_for_load_state("load")  # measured with its stylesheet applied
    widths["user"] = page_width(page)
    screenshot(page, "phone-user")
    assert all(width <= WIDTH for width in widths.values()), str(widths)
