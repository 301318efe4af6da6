"""The integrations page in a browser: SCIM tokens, the attribute mapping, the SFTP drop box with
its keys and held pickups, and organizations kept apart."""

import re
import subprocess
import sys
from pathlib import Path

import asyncssh
import httpx
from playwright.sync_api import expect

from tests.console.conftest import screenshot, sign_in
from tests.factories import csv_bytes, people

NO_LIMITS = "e => { e.removeAttribute('min'); e.removeAttribute('max') }"


def scim_status(server, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{server.url}/scim/v2/Users", headers=headers, timeout=10).status_code


def test_a_scim_token_is_shown_once_works_and_can_be_revoked(page, server, org):
    sign_in(page, org)
    page.goto("/integrations")
    page.get_by_label("New token name").fill("entra-id")
    page.get_by_role("button", name="Create token").click()
    # Posted, then shown by a page of its own: a reload makes no second token.
    expect(page).to_have_url(re.compile(r"/integrations/scim-tokens/[0-9a-f-]{36}/created$"))
    expect(page.get_by_role("status")).to_contain_text("shown only this once")
    token = page.locator("#scim-token").inner_text().strip()
    assert page.locator("#scim-url").inner_text().strip() == f"{server.url}/scim/v2"
    assert scim_status(server, token) == 200
    # Copy buttons put each value on the clipboard.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy the secret token").click()
    expect(page.get_by_role("button", name="Copied the secret token")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token
    page.get_by_role("button", name="Copy the tenant URL").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"{server.url}/scim/v2"
    # This server speaks plain HTTP, which identity providers refuse: the page says so.
    expect(page.locator("#needs-https")).to_contain_text("only https:// addresses")
    screenshot(page, "scim-token-created")
    page.reload()
    expect(page.get_by_role("status")).to_contain_text("was shown once")
    assert token not in page.content()
    page.goto("/integrations")
    assert token not in page.content()  # never shown again
    assert len(page.locator("#scim tr", has_text="entra-id").all()) == 1
    row = page.locator("#scim tr", has_text="entra-id")
    expect(row).to_contain_text("active")
    row.get_by_role("link", name="Revoke").click()
    expect(page.get_by_role("heading")).to_contain_text("Revoke the token")
    page.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    expect(page.locator("#scim tr", has_text="entra-id")).to_contain_text("revoked")
    assert scim_status(server, token) == 401


def test_a_token_needs_a_name(page, org):
    sign_in(page, org)
    page.goto("/integrations")
    page.get_by_label("New token name").fill("   ")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("alert")).to_contain_text("Token name")


def test_the_mapping_is_saved_with_one_form(page, server, org):
    sign_in(page, org)
    page.goto("/integrations")
    page.get_by_label("Phone", exact=True).select_option("off")
    page.get_by_label("Display name").select_option("name.formatted")
    page.get_by_role("button", name="Save mapping").click()
    expect(page.get_by_role("status")).to_contain_text("mapping is saved")
    expect(page.get_by_label("Phone", exact=True)).to_have_value("off")
    expect(page.get_by_label("Display name")).to_have_value("name.formatted")
    shown = server.roster("scim", "mapping", "show", "--tenant", org.slug, "--json")
    assert '"phone": null' in shown and '"display_name": "name.formatted"' in shown
    # A mandatory field has no "off"; a forged one is refused, naming the field.
    assert page.get_by_label("E-mail").locator("option[value=off]").count() == 0
    page.get_by_label("Phone", exact=True).select_option("default")
    page.get_by_role("button", name="Save mapping").click()
    expect(page.get_by_label("Phone", exact=True)).to_have_value("default")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    forged = page.request.post("/integrations/mapping", form={"csrf": csrf, "email": "off"})
    assert forged.status == 400 and "E-mail" in forged.text()


def test_the_drop_box_password_keys_and_a_held_pickup(page, server, org, tmp_path):
    sign_in(page, org)
    page.goto("/integrations")
    page.get_by_role("button", name="Enable the drop box").click()
    expect(page.get_by_role("status")).to_contain_text("enabled")
    expect(page.locator("#dropbox")).to_contain_text(org.slug)
    expect(page.locator("#host-key")).to_contain_text("SHA256:")

    page.get_by_label("New password").fill("short")
    page.locator("#sftp-password").evaluate("e => e.removeAttribute('minlength')")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 12 characters")
    page.get_by_label("New password").fill("a long enough drop box password")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("status")).to_contain_text("password is set")
    assert "a long enough drop box password" not in page.content()

    key = asyncssh.generate_private_key("ssh-ed25519", comment="uploader@ad")
    page.get_by_label("Add a public key").fill(key.export_private_key().decode())
    page.get_by_role("button", name="Add key").click()
    expect(page.get_by_role("alert")).to_contain_text("private key")
    page.get_by_label("Add a public key").fill("hello, this is not a key")
    page.get_by_role("button", name="Add key").click()
    expect(page.get_by_role("alert")).to_contain_text("not an OpenSSH public key")
    page.get_by_label("Add a public key").fill(key.export_public_key().decode())
    page.get_by_role("button", name="Add key").click()
    fingerprint = key.get_fingerprint("sha256")
    expect(page.get_by_role("status")).to_contain_text(fingerprint)
    expect(page.locator("#dropbox table")).to_contain_text("uploader@ad")

    # Each mistake is named under its field, and what was typed stays to be corrected.
    page.get_by_label("Daily time").fill("25:00")
    page.locator("#daily-time").evaluate("e => e.removeAttribute('pattern')")
    page.get_by_label("File name").fill("../users.csv")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Save pickup settings").click()
    assert answer.value.status == 400
    expect(page.get_by_role("alert")).to_contain_text("see the fields marked below")
    expect(page.locator("#e-daily_time")).to_contain_text("25:00")
    expect(page.get_by_label("Daily time")).to_have_value("25:00")
    expect(page.get_by_label("Daily time")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#e-file_name")).to_contain_text("'../users.csv' cannot be")
    expect(page.get_by_label("File name")).to_have_value("../users.csv")
    screenshot(page, "pickup-settings-errors")
    page.get_by_label("Daily time").fill("03:30")
    page.get_by_label("File name").fill("flexwhere - users.csv")
    page.get_by_label("Also pick up right after each upload").check()
    page.get_by_role("button", name="Save pickup settings").click()
    expect(page.get_by_role("status")).to_contain_text("settings are saved")
    expect(page.get_by_label("Daily time")).to_have_value("03:30")
    expect(page.get_by_label("Also pick up right after each upload")).to_be_checked()

    # Ten users, then an export with one of them: the deletion guard holds it.
    file = tmp_path / "users.csv"
    file.write_bytes(csv_bytes(people(10)))
    server.roster("import", str(file), "--tenant", org.slug, "--mode", "replace")
    folder = Path(server.env["ROSTER_DATA_DIR"]) / "dropbox" / org.slug
    (folder / "flexwhere - users.csv").write_bytes(csv_bytes(people(1)))
    done = subprocess.run(
        [sys.executable, "-m", "roster", "sync", "run", "--tenant", org.slug],
        env=server.env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1 and "held" in done.stdout, done.stderr
    page.goto("/integrations")
    held = page.locator("ul.held li")
    expect(held).to_have_count(1)
    expect(held).to_contain_text("remove 9")
    screenshot(page, "integrations")
    held.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("9 removed")
    expect(page.locator("ul.held li")).to_have_count(0)
    expect(page.locator("#pickups table")).to_contain_text(f"approved by {org.admin_email}")
    assert "user000009" not in server.roster("users", "list", "--tenant", org.slug)
    # The held pickup's page says who approved it, when, and which import applied it ...
    page.locator("#pickups tr", has_text="approved").get_by_role("link").click()
    decision = page.locator("p.decision")
    expect(decision).to_contain_text(f"Approved by {org.admin_email} on ")
    expect(decision).to_contain_text(re.compile(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    expect(decision).to_contain_text("remove 9 of 11 users")  # the admin is one of 11
    decision.get_by_role("link", name=re.compile("import")).click()
    # ... whose page explains why it went past the guard, and lists who it removed.
    expect(page.locator(".status-line")).to_contain_text("Applied")
    expect(page.locator("p.decision")).to_contain_text(
        "would have held this import (the import would remove 9 of 11 users"
    )
    expect(page.locator("p.decision")).to_contain_text(f"{org.admin_email} approved held pickup")
    expect(page.locator("[role=alert]")).to_have_count(0)  # no bare "held" box beside Applied
    removed = page.get_by_role("region", name="Removed")
    expect(removed.get_by_role("heading")).to_contain_text("9")
    expect(removed.locator("tbody tr")).to_have_count(9)
    expect(removed).to_contain_text("user000009@example.com")
    screenshot(page, "approved-import")
    page.goto("/integrations")

    page.locator("#dropbox tr", has_text="uploader@ad").get_by_role("button").click()
    expect(page.get_by_role("status")).to_contain_text("removed")
    expect(page.locator("#dropbox table")).not_to_contain_text("uploader@ad")
    page.get_by_role("button", name="Disable the drop box").click()
    expect(page.locator("#dropbox")).to_contain_text("disabled")


def test_a_second_organization_sees_none_of_the_firsts_tokens_or_keys(page, server, org):
    server.roster("scim", "token", "create", "--tenant", org.slug, "--name", "first-org-token")
    server.roster("sftp", "enable", "--tenant", org.slug)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="first-org-key")
    key_file = Path(server.env["ROSTER_DATA_DIR"]) / f"{org.slug}.pub"
    key_file.write_bytes(key.export_public_key())
    server.roster("sftp", "key", "add", "--tenant", org.slug, str(key_file))
    first_tokens = server.roster("scim", "token", "list", "--tenant", org.slug, "--json")
    token_id = re.search(r'"id": "([0-9a-f-]+)"', first_tokens)
    assert token_id
    other = server.organization("Other Org")
    sign_in(page, other)
    page.goto("/integrations")
    content = page.content()
    assert "first-org-token" not in content and "first-org-key" not in content
    expect(page.get_by_role("button", name="Enable the drop box")).to_be_visible()
    # Revoking the first organization's token by its id does nothing to it.
    page.goto(f"/integrations/scim-tokens/{token_id[1]}/revoke")
    expect(page.get_by_role("status")).to_contain_text("already revoked or does not exist")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    page.request.post(f"/integrations/scim-tokens/{token_id[1]}/revoke", form={"csrf": csrf})
    fingerprint = key.get_fingerprint("sha256")
    page.request.post(
        "/integrations/dropbox/keys/remove", form={"csrf": csrf, "fingerprint": fingerprint}
    )
    still = server.roster("scim", "token", "list", "--tenant", org.slug, "--json")
    assert '"revoked": false' in still
    assert fingerprint in server.roster("sftp", "show", "--tenant", org.slug)
