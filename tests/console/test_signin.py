"""Signing in and out, two-step sign-in, refusals, and organizations kept apart."""

import re
import time

import pyotp
from playwright.sync_api import expect

from tests.console.conftest import PASSWORD, screenshot, sign_in


def test_an_admin_signs_in_sees_the_users_and_signs_out(page, org):
    page.goto("/users")
    expect(page).to_have_url(re.compile(r"/signin\?next=/users"))
    screenshot(page, "signin")
    sign_in(page, org)
    expect(page).to_have_url(re.compile(r"/users$"))
    expect(page.get_by_role("heading", name=re.compile("Users"))).to_be_visible()
    expect(page.locator("table.list")).to_contain_text(org.admin_email)
    screenshot(page, "users")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.goto("/users")
    expect(page).to_have_url(re.compile(r"/signin"))


def test_a_wrong_password_is_refused_without_saying_why(page, org):
    sign_in(page, org, "not the password at all")
    expect(page.get_by_role("alert")).to_contain_text("do not match an admin")
    page.get_by_label("Organization").fill("no-such-org")
    page.get_by_label("E-mail address").fill(org.admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match an admin")


def test_two_step_sign_in(page, browser, server, org):
    sign_in(page, org)
    page.goto("/account")
    secret = page.locator("code.secret").inner_text()
    page.reload()  # the key offered stays the same until it is confirmed
    expect(page.locator("code.secret")).to_have_text(secret)
    # Turning it on takes the password too.
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_label("Your password").fill("not my password at all")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_contain_text("password is not right")
    enrolled = pyotp.TOTP(secret).now()
    page.get_by_label("Code from the app").fill(enrolled)
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("status")).to_contain_text("Two-step sign-in is on")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, org)
    expect(page).to_have_url(re.compile(r"/signin/code"))
    page.get_by_label("Code").fill("000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    # The code that turned it on was used: it does not sign in.
    page.get_by_label("Code").fill(enrolled)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    used = pyotp.TOTP(secret).at(time.time() + 30)
    page.get_by_label("Code").fill(used)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/users$"))
    # The same code does not sign in a second time (someone who saw it over a shoulder).
    other = browser.new_context(base_url=server.url).new_page()
    sign_in(other, org)
    other.get_by_label("Code").fill(used)
    other.get_by_role("button", name="Continue").click()
    expect(other.get_by_role("alert")).to_contain_text("not right")
    other.context.close()
    # Turning it off takes the password, not only an open session.
    page.goto("/account")
    page.get_by_label("Your password").fill("not my password at all")
    page.get_by_role("button", name="Turn two-step sign-in off").click()
    expect(page.get_by_role("alert")).to_contain_text("two-step sign-in stays on")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Turn two-step sign-in off").click()
    expect(page.get_by_role("status")).to_contain_text("Two-step sign-in is off")
    # A new key is offered afterwards, not the one turned off.
    expect(page.locator("code.secret")).not_to_have_text(secret)


def test_a_second_organization_sees_none_of_the_first(page, server, org):
    other = server.organization("Other Org")
    sign_in(page, other)
    expect(page).to_have_url(re.compile(r"/users$"))
    expect(page.locator("table.list")).not_to_contain_text(org.admin_email)
    expect(page.locator("table.list")).to_contain_text(other.admin_email)


def test_security_headers_and_forged_forms(page, server, org):
    response = page.goto("/signin")
    assert response is not None
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    sign_in(page, org)
    # A form posted without the session's token (as another site would) changes nothing.
    forged = page.request.post("/signout", form={"csrf": "forged"})
    assert forged.status in (200, 303) or forged.ok
    page.goto("/users")
    expect(page).to_have_url(re.compile(r"/users$"))  # still signed in
