"""Signing in to the Control Centre through the organization's OpenID provider, in Chromium,
against a real `roster serve` and a real provider on loopback: the admin signs in with their
work account; anyone Roster does not know as a present admin of the organization is refused
with one sentence, whatever the provider says, and the audit log names why."""

import re
import time
import uuid

import pyotp
from playwright.sync_api import expect

from tests.console.conftest import PASSWORD, Org, screenshot, sign_in
from tests.factories import csv_bytes, person


def _with_provider(server, org: Org, issuer: str) -> None:
    server.roster(
        "sso", "set", "--tenant", org.slug, "--issuer", issuer, "--client-id", "roster-console",
        stdin="the client secret\n",
    )  # fmt: skip


def _through_provider(page, org: Org, sub: str) -> None:
    """From the sign-in page, through the provider's own page, signed in there as `sub`."""
    page.goto(f"/signin?organization={org.slug}")
    page.get_by_role("link", name="Sign in with localhost").click()
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize").click()


def test_an_admin_signs_in_with_the_provider(page, server, org, openid_provider):
    _with_provider(server, org, openid_provider.issuer)
    sub = f"{org.slug}-admin"
    openid_provider.person(sub, email=org.admin_email.upper())
    # First time on this browser: the organization is asked for, then its provider offered.
    page.goto("/signin")
    page.get_by_text("Sign in with your work account instead").click()
    page.get_by_label("The short name you sign in with").fill(org.slug)
    page.get_by_role("button", name="Continue").click()
    screenshot(page, "signin-sso")
    page.get_by_role("link", name="Sign in with localhost").click()
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    expect(page).to_have_url(re.compile(r"/users$"))
    expect(page.locator("table.list")).to_contain_text(org.admin_email)
    page.goto("/audit?channel=sso")
    expect(page.locator("table.list")).to_contain_text("sso_signed_in")
    screenshot(page, "audit-sso")
    # Next time this browser is offered the provider straight away.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in with localhost")).to_be_visible()


def test_two_step_sign_in_still_asks_for_the_code(page, server, org, openid_provider):
    """An admin who turned two-step sign-in on gives the code after the provider too."""
    sign_in(page, org)
    page.goto("/account")
    secret = page.locator("code.secret").inner_text()
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("status")).to_contain_text("Two-step sign-in is on")
    page.get_by_role("button", name="Sign out").click()
    _with_provider(server, org, openid_provider.issuer)
    openid_provider.person(f"{org.slug}-2fa", email=org.admin_email)
    _through_provider(page, org, f"{org.slug}-2fa")
    expect(page).to_have_url(re.compile(r"/signin/code"))
    page.get_by_label("Code").fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/users$"))


def test_people_roster_does_not_let_in_are_refused(page, server, org, openid_provider, tmp_path):
    _with_provider(server, org, openid_provider.issuer)
    # A user who is not an admin, and a second admin who then leaves by a CSV replace.
    rows = [person(1, CSV_EMAIL=f"jan@{org.slug}.example")]
    path = tmp_path / "users.csv"
    path.write_bytes(csv_bytes(rows))
    server.roster("import", str(path), "--tenant", org.slug, "--mode", "add", "-q")
    leaver = f"leaver@{org.slug}.example"
    server.roster(
        "admin", "create", "--tenant", org.slug, "--email", leaver,
        "--first-name", "Lee", "--surname", "Leaver", stdin=PASSWORD + "\n",
    )  # fmt: skip
    for name, email in (("user", f"jan@{org.slug}.example"), ("stranger", "x@elsewhere.example"),
                        ("leaver", leaver)):  # fmt: skip
        openid_provider.person(f"{org.slug}-{name}", email=email)

    _through_provider(page, org, f"{org.slug}-leaver")  # an admin still: in
    expect(page).to_have_url(re.compile(r"/users$"))
    page.get_by_role("button", name="Sign out").click()

    for name in ("user", "stranger"):
        _through_provider(page, org, f"{org.slug}-{name}")
        expect(page.get_by_role("heading", name="Sign-in was not possible")).to_be_visible()
        for why in ("not an admin", "no present"):  # nothing about why
            expect(page.locator("main")).not_to_contain_text(why)
    screenshot(page, "signin-sso-refused")

    # The replace names the user and the first admin (by the username `admin create` gave),
    # not the second admin.
    first_admin = person(3, CSV_EMAIL=org.admin_email, CSV_USERNAME=org.admin_email.split("@")[0])
    path.write_bytes(csv_bytes([*rows, first_admin]))
    server.roster("import", str(path), "--tenant", org.slug, "--mode", "replace", "-q")
    _through_provider(page, org, f"{org.slug}-leaver")
    expect(page.get_by_role("heading", name="Sign-in was not possible")).to_be_visible()

    sign_in(page, org)  # the password still works beside the provider
    page.goto("/audit?channel=sso")
    log = page.locator("table.list")
    expect(log).to_contain_text("not an admin")
    expect(log).to_contain_text("no present, active user of the organization")


def test_the_integrations_page_sets_the_provider(page, server, org, openid_provider):
    sign_in(page, org)
    page.goto("/integrations#sso")
    section = page.locator("#sso")
    expect(section.locator("#sso-callback")).to_have_text(f"{server.url}/sso/callback/{org.slug}")
    section.get_by_label("Issuer URL").fill(openid_provider.issuer)
    section.get_by_label("Client id").fill("roster-from-the-console")
    section.get_by_label("Client secret").fill("a very secret value")
    section.get_by_label("Claim that names the user").select_option("preferred_username")
    section.get_by_label("App redirect URIs").fill("com.example.roster:/signed-in\nhttp://x y")
    section.get_by_role("button", name="Save and turn on").click()
    expect(page.get_by_role("alert")).to_contain_text("redirect URI")
    section.get_by_label("Client secret").fill("a very secret value")
    section.get_by_label("App redirect URIs").fill("com.example.roster:/signed-in")
    section.get_by_role("button", name="Save and turn on").click()
    expect(page.get_by_role("status")).to_contain_text("Sign-in through the provider is on")
    expect(section).to_contain_text("on")
    expect(section.get_by_label("Client id")).to_have_value("roster-from-the-console")
    assert "a very secret value" not in page.content()
    screenshot(page, "integrations-sso")
    shown = server.roster("sso", "show", "--tenant", org.slug)
    assert "preferred_username" in shown and "secret" not in shown.replace("client_secret", "")

    page.goto(f"/signin?organization={org.slug}")
    expect(page.get_by_role("link", name="Sign in with localhost")).to_be_visible()
    sign_in(page, org)
    page.goto("/integrations#sso")
    page.get_by_role("button", name="Turn sign-in through the provider off").click()
    expect(page.get_by_role("status")).to_contain_text("is off")
    page.goto(f"/signin?organization={org.slug}")
    expect(page.get_by_role("link", name=re.compile("Sign in with"))).to_have_count(0)


def test_a_stale_or_forged_answer_is_refused(page, server, org):
    page.goto(f"/sso/callback/{org.slug}?state={uuid.uuid4().hex}.{'x' * 43}&code=abc")
    expect(page.get_by_role("heading", name="Sign-in was not possible")).to_be_visible()
