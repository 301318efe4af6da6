"""The users pages in a browser: adding, editing, deactivating and removing users, admin rights,
sign-outs, SCIM's read-only users, forged forms and organizations kept apart."""

import json
import re
import time

import httpx
from playwright.sync_api import expect

from tests.console.conftest import Org, screenshot, sign_in
from tests.factories import csv_bytes, people, person


def add_user(page, username: str = "JanJ", email: str = "j.jansen@example.com") -> str:  # type: ignore[no-untyped-def]
    """Add a user through the form; returns the path of their page."""
    page.goto("/users/new")
    page.get_by_label("Username").fill(username)
    page.get_by_label("First name").fill("Jan")
    page.get_by_label("Surname").fill("Jansen")
    page.get_by_label("Display name").fill("Jansen, Jan")
    page.get_by_label("E-mail").fill(email)
    page.get_by_role("button", name="Add user").click()
    expect(page).to_have_url(re.compile(r"/users/[0-9a-f-]{36}\?done="))
    return page.url.split("?")[0].removeprefix(page.url.split("/users/")[0])


def test_add_a_user_with_an_error_shown_beside_its_field(page, org):
    sign_in(page, org)
    page.goto("/users")
    page.locator("summary[aria-label=Add]").click()
    page.get_by_role("link", name="Add user", exact=True).click()
    expect(page).to_have_url(re.compile(r"/users/new$"))
    # Every field shows its rule.
    expect(page.locator("#h-username")).to_have_text(
        "Required · 2–50 characters · text, no spaces · e.g. JanJ"
    )
    expect(page.locator("#h-first_aider")).to_have_text("Optional · yes or no")
    page.get_by_label("Username").fill("Jan Jansen")
    page.get_by_label("First name").fill("Jan")
    page.get_by_label("Surname").fill("<Jansen>")
    page.get_by_label("Display name").fill("Jansen, Jan")
    page.get_by_label("E-mail").fill("j.jansen@example.com")
    page.get_by_label("First aider (EHBO)").select_option("yes")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#e-username")).to_contain_text("must not contain spaces")
    expect(page.locator("#e-surname")).to_contain_text("must not contain '<'")
    expect(page.locator("#e-first_name")).to_have_count(0)
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")
    # What was typed is kept (and shown as text, not markup).
    expect(page.get_by_label("Surname")).to_have_value("<Jansen>")
    expect(page.get_by_label("First aider (EHBO)")).to_have_value("1")
    screenshot(page, "user-add-form")
    page.get_by_label("Username").fill("JanJ")
    page.get_by_label("Surname").fill("Jansen")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_contain_text("JanJ is added")
    expect(page.locator("dl.fields")).to_contain_text("j.jansen@example.com")
    expect(page.locator("dl.fields")).to_contain_text("console")  # the channel
    history = page.locator("table.trail")
    expect(history).to_contain_text("added")
    expect(history).to_contain_text(org.admin_email)  # the actor
    screenshot(page, "user-page")
    # A second user with the same e-mail address: the clash is named at the field.
    page.goto("/users/new")
    for label, value in [("Username", "Other"), ("First name", "Ann"), ("Surname", "Other"),
                         ("Display name", "Ann"), ("E-mail", "J.Jansen@example.com")]:  # fmt: skip
        page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#e-email")).to_contain_text("Another user has this e-mail address")


def test_edit_deactivate_reactivate_and_remove(page, org):
    sign_in(page, org)
    path = add_user(page)
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Display name")).to_have_value("Jansen, Jan")
    page.get_by_label("Department").fill("Facilities")
    page.get_by_label("Display name").fill("x" * 21)
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#e-display_name")).to_contain_text("at most 20 characters")
    expect(page.get_by_label("Department")).to_have_value("Facilities")
    page.get_by_label("Display name").fill("Jan J.")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    expect(page.locator("dl.fields")).to_contain_text("Facilities")
    change = page.locator("table.trail tbody tr").first
    expect(change).to_contain_text("updated")
    expect(change).to_contain_text("Department: — → Facilities")
    expect(change).to_contain_text("Display name: Jansen, Jan → Jan J.")

    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("status")).to_contain_text("deactivated")
    expect(page.locator(".user-tags")).to_contain_text("inactive")
    page.get_by_role("button", name="Reactivate").click()
    expect(page.get_by_role("status")).to_contain_text("active again")

    page.get_by_role("link", name="Remove…").click()
    expect(page.get_by_role("heading", name=re.compile("Remove Jan J."))).to_be_visible()
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(re.compile(path + "$"))
    page.get_by_role("link", name="Remove…").click()
    page.get_by_role("button", name="Remove JanJ").click()
    expect(page).to_have_url(re.compile(r"/users\?done="))
    expect(page.get_by_role("status")).to_contain_text("JanJ is removed")
    assert page.goto(path).status == 404


def test_an_edit_over_a_newer_change_is_refused_keeping_what_was_typed(page, server, org, tmp_path):
    sign_in(page, org)
    path = add_user(page)
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Title").fill("Manager")
    page.get_by_label("Department").fill("Facilities")
    # While the form is open, an import changes the user.
    export = tmp_path / "people.csv"
    export.write_text(
        '"CSV_USERNAME";"CSV_FIRSTNAME";"CSV_SURNAME";"CSV_DISPLAYNAME";"CSV_EMAIL";"CSV_TITLE"\n'
        '"JanJ";"Jan";"Jansen";"Jansen, Jan";"j.jansen@example.com";"Director"\n'
    )
    server.roster("import", str(export), "--tenant", org.slug, "--mode", "add", "--quiet")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Save changes").click()
    assert answer.value.status == 409
    refusal = page.locator("#changed-meanwhile")
    expect(refusal).to_contain_text("Not saved")
    expect(refusal).to_contain_text("Job title changed from — to Director (command line by cli:")
    expect(page.get_by_label("Title")).to_have_value("Manager")  # what the admin typed
    expect(page.get_by_label("Department")).to_have_value("Facilities")
    screenshot(page, "user-edit-changed-meanwhile")
    shown = page.request.get(path).text()  # the import's change is still what is stored
    assert "Director" in shown and "Facilities" not in shown
    # Saving again, knowing what changed, stores the form as it is.
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    expect(page.locator("dl.fields")).to_contain_text("Facilities")
    latest = page.locator("table.trail tbody tr").first
    expect(latest).to_contain_text("Job title: Director → Manager")
    # A form without the version it was made from is not one of this console's.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    form = {"csrf": csrf, "username": "JanJ", "first_name": "Jan", "surname": "Jansen",
            "display_name": "Jansen, Jan", "email": "j.jansen@example.com"}  # fmt: skip
    assert page.request.post(f"{path}/edit", form=form).status == 400
    page.reload()
    expect(page.locator("dl.fields")).to_contain_text("Facilities")


def test_make_admin_sign_in_with_the_shown_password_and_remove_rights(page, browser, server, org):
    sign_in(page, org)
    add_user(page, "Ann", "ann@example.com")
    page.get_by_role("button", name="Make admin").click()
    expect(page.get_by_role("heading", name=re.compile("is now an admin"))).to_be_visible()
    password = page.locator("#one-time-password").inner_text()
    assert len(password) >= 12
    user_page = page.get_by_role("link", name=re.compile("Back to")).get_attribute("href")

    other = browser.new_context(base_url=server.url)
    try:
        theirs = other.new_page()
        sign_in(theirs, Org(org.slug, "ann@example.com"), password)
        expect(theirs).to_have_url(re.compile(r"/users$"))
        expect(theirs.locator(".who")).to_contain_text("Jansen, Jan")
        # The first admin's rights: the new admin may take them; the organization keeps one.
        theirs.get_by_role("link", name=org.admin_email.split("@")[0], exact=True).click()
        theirs.get_by_role("button", name="Remove admin rights").click()
        expect(theirs.get_by_role("status")).to_contain_text("no longer an admin")
        theirs.goto(user_page)
        theirs.get_by_role("button", name="Remove admin rights").click()
        expect(theirs.get_by_role("alert")).to_contain_text("last admin")
        expect(theirs.locator(".user-tags")).to_contain_text("admin")
        theirs.get_by_role("button", name="Deactivate").click()
        expect(theirs.get_by_role("alert")).to_contain_text("last admin")
    finally:
        other.close()
    page.goto("/users")  # the first admin is no admin any more
    expect(page.get_by_role("heading", name="This is the admins' console")).to_be_visible()


def test_sign_a_user_out_and_everyone_out(page, browser, server, org):
    sign_in(page, org)
    page.goto("/users")
    page.get_by_role("link", name=org.admin_email.split("@")[0], exact=True).click()
    expect(page.locator("#sessions + table")).to_contain_text("the Control Centre")
    page.goto("/users")
    page.get_by_role("link", name="Sign everyone out…").click()
    expect(page.get_by_role("heading", name="Sign everyone out of the app?")).to_be_visible()
    page.get_by_role("button", name="Sign everyone out").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Everyone is signed out of the app: 0 app sessions were ended"
    )
    # Signing oneself out everywhere ends this console session too.
    page.get_by_role("link", name=org.admin_email.split("@")[0], exact=True).click()
    page.get_by_role("button", name="Sign this user out everywhere").click()
    expect(page).to_have_url(re.compile(r"/signin"))


def test_a_scim_managed_user_is_read_only(page, server, org):
    token = server.roster(
        "scim", "token", "create", "--tenant", org.slug, "--name", "entra"
    ).strip()
    created = httpx.post(
        f"{server.url}/scim/v2/Users",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Piet",
            "name": {"givenName": "Piet", "familyName": "Pietersen"},
            "displayName": "Pietersen, Piet",
            "emails": [{"primary": True, "value": "piet@example.com"}],
            "active": True,
        },
    )
    assert created.status_code == 201, created.text
    sign_in(page, org)
    page.goto(f"/users/{created.json()['id']}")
    expect(page.locator("#scim-note")).to_contain_text(
        "SCIM (your identity provider) manages this user"
    )
    for name in ("Edit", "Remove…"):
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    expect(page.get_by_role("button", name="Deactivate")).to_have_count(0)
    expect(page.get_by_role("button", name="Make admin")).to_be_visible()
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    path = page.url
    for action in ("edit", "deactivate", "remove"):
        refused = page.request.post(f"{path}/{action}", form={"csrf": csrf, "username": "Hacked"})
        assert refused.status == 403, action
    assert page.goto(f"{path}/edit").status == 403
    page.goto(path)
    expect(page.locator("dl.fields")).to_contain_text("Piet")
    expect(page.locator(".user-tags")).not_to_contain_text("inactive")


def test_a_forged_form_changes_nothing(page, org):
    sign_in(page, org)
    path = add_user(page)
    for action, form in [
        ("deactivate", {}),
        ("remove", {}),
        ("admin", {}),
        ("edit", {"username": "Forged", "first_name": "F", "surname": "F",
                  "display_name": "F", "email": "f@example.com"}),
    ]:  # fmt: skip
        forged = page.request.post(f"{path}/{action}", form={"csrf": "forged", **form})
        assert forged.status == 403, action
    forged = page.request.post("/users/new", form={"username": "Forged"})
    assert forged.status == 403
    page.goto(path)
    expect(page.locator(".user-tags")).not_to_contain_text("inactive")
    expect(page.locator(".user-tags")).not_to_contain_text("admin")
    expect(page.locator("table.trail tbody tr")).to_have_count(1)  # only "added"
    page.goto("/users")
    expect(page.locator("table.list")).not_to_contain_text("Forged")


def test_another_organization_gets_not_found(page, server, org):
    sign_in(page, org)
    path = add_user(page)
    page.get_by_role("button", name="Sign out").click()
    other = server.organization("Other Org")
    sign_in(page, other)
    assert page.goto(path).status == 404
    assert page.goto(f"{path}/edit").status == 404
    assert page.goto(f"{path}/remove").status == 404
    assert page.goto("/users/not-a-uuid").status == 404
    page.goto("/users")
    own_csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    for action in ("deactivate", "remove", "admin", "sign-out"):
        assert page.request.post(f"{path}/{action}", form={"csrf": own_csrf}).status == 404
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, org)
    page.goto(path)
    expect(page.locator(".user-tags")).not_to_contain_text("inactive")
    expect(page.locator("table.trail tbody tr")).to_have_count(1)


def app_session(server, org: Org, email: str) -> str:  # type: ignore[no-untyped-def]
    """An app session of `email`, signed in as the app does (a mailed code); its access token."""
    asked = httpx.post(f"{server.url}/app/v1/sign-in/code", json={"email": email})
    assert asked.status_code == 202
    deadline = time.monotonic() + 10
    while True:  # the code reaches the outbox on its own time
        mails = json.loads(server.roster("mail", "outbox", "--last", "100", "--json"))
        found = [m for m in mails if m["to"] == email]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    code = re.search(r"\b(\d{6})\b", found[-1]["subject"])
    assert code
    token = httpx.post(
        f"{server.url}/app/v1/sign-in/token",
        json={"email": email, "code": code[1]},
    )
    assert token.status_code == 200, token.text
    return token.json()["access_token"]


def test_sign_everyone_out_counts_and_ends_real_app_sessions(page, server, org, tmp_path):
    emails = [f"p{n}@{org.slug}.example" for n in range(3)]
    rows = [
        f'"p{n}";"First{n}";"Surname{n}";"Surname{n}, F";"{email}"'
        for n, email in enumerate(emails)
    ]
    path = tmp_path / "people.csv"
    header = '"CSV_USERNAME";"CSV_FIRSTNAME";"CSV_SURNAME";"CSV_DISPLAYNAME";"CSV_EMAIL"'
    path.write_text("\r\n".join([header, *rows]) + "\r\n")
    server.roster("import", str(path), "--tenant", org.slug, "--mode", "add", "--quiet")
    tokens = [app_session(server, org, email) for email in emails[:2]]
    me = [
        httpx.get(f"{server.url}/app/v1/me", headers={"Authorization": f"Bearer {t}"})
        for t in tokens
    ]
    assert [r.status_code for r in me] == [200, 200]
    sign_in(page, org)
    page.goto("/users")
    page.get_by_role("link", name="Sign everyone out…").click()
    page.get_by_role("button", name="Sign everyone out").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Everyone is signed out of the app: 2 app sessions were ended"
    )
    me = [
        httpx.get(f"{server.url}/app/v1/me", headers={"Authorization": f"Bearer {t}"})
        for t in tokens
    ]
    assert [r.status_code for r in me] == [401, 401]
    # The admin's own console session is not an app session: still signed in.
    page.goto("/users")
    expect(page).to_have_url(re.compile(r"/users$"))


def test_only_messages_roster_chose_are_shown(page, org):
    """A message in a link someone else made is not shown as Roster's, and a message of one
    session is not shown again after signing in anew."""
    sign_in(page, org)
    page.goto("/users?done=Your+account+is+suspended%3A+call+0900-SCAM")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    expect(page.get_by_role("status")).to_have_count(0)
    page.goto("/users?done=Forged&seal=" + "0" * 64)
    expect(page.get_by_role("status")).to_have_count(0)
    assert page.goto("/users?done=Forged&seal=%C3%A9").status == 200  # not a 500
    expect(page.get_by_role("status")).to_have_count(0)

    add_user(page, "RoseR", "r.rose@example.com")
    expect(page.get_by_role("status")).to_have_text("RoseR is added.")
    sealed = page.url
    page.context.clear_cookies()
    page.goto(sealed)
    sign_in(page, org)
    page.goto(sealed)
    expect(page.get_by_role("heading", name=re.compile("Rose"))).to_be_visible()
    expect(page.get_by_role("status")).to_have_count(0)


def test_a_page_number_past_the_end_shows_the_last_page(page, server, org, tmp_path):
    """120 imported users are three pages of the list and three of the audit log (plus the
    organization's own events): a link to page 9 of either shows its last page, filters kept."""
    export = tmp_path / "people.csv"
    export.write_bytes(csv_bytes(people(120, start=500)))
    server.roster("import", str(export), "--tenant", org.slug, "--mode", "add", "--quiet")
    sign_in(page, org)
    page.goto("/users?sort=email&page=9")
    expect(page).to_have_url(re.compile(r"/users\?sort=email&page=3$"))
    expect(page.get_by_role("link", name="user000619")).to_be_visible()
    page.goto("/audit?channel=cli&page=9")
    expect(page).to_have_url(re.compile(r"/audit\?channel=cli&page=3$"))
    expect(page.locator("table tbody tr").first).to_be_visible()
    expect(page.get_by_role("link", name="Older")).to_have_count(0)
    page.goto("/integrations/scim-log?status=4xx&page=9")  # no SCIM request yet: page 1
    expect(page).to_have_url(re.compile(r"/integrations/scim-log\?status=4xx&page=1$"))


def test_the_list_sorts_names_and_departments_alphabetically(page, server, org, tmp_path):
    """Names and departments, imported in another order and in mixed case, are listed as
    people expect them (not by code point: Krüger before Köhler, Çelik last), either way; users
    without a department first, ties by username."""
    names = ["Weiß", "schröder", "KRÜGER", "Köhler", "Çelik", "Dubois", "Schäfer"]
    departments = ["Zentrale", "Einkauf", "Öffentlichkeit", "Logistik", "Élevage", "einkauf",
                   "Ärztlicher Dienst"]  # fmt: skip
    rows = [
        person(n, CSV_DISPLAYNAME=name, CSV_DEPARTMENT=department)
        for n, (name, department) in enumerate(zip(names, departments, strict=True), start=700)
    ]
    export = tmp_path / "people.csv"
    export.write_bytes(csv_bytes(rows))
    server.roster("import", str(export), "--tenant", org.slug, "--mode", "add", "--quiet")
    sign_in(page, org)
    page.goto("/users")
    page.get_by_role("link", name="Name", exact=True).click()
    expect(page).to_have_url(re.compile(r"/users\?sort=name&page=1$"))
    shown_names = page.locator("table.list tbody tr td:nth-child(2)")
    by_name = ["Çelik", "Dubois", "Fiona Manager", "Köhler", "KRÜGER", "Schäfer", "schröder",
               "Weiß"]  # fmt: skip
    expect(shown_names).to_have_text(by_name)
    screenshot(page, "users-sorted-by-name")
    page.get_by_role("link", name="Name ▲", exact=True).click()
    expect(page).to_have_url(re.compile(r"sort=-name"))
    expect(shown_names).to_have_text(by_name[::-1])
    page.get_by_role("link", name="Department", exact=True).click()
    shown_departments = page.locator("table.list tbody tr td:nth-child(4)")
    by_department = ["", "Ärztlicher Dienst", "Einkauf", "einkauf", "Élevage", "Logistik",
                     "Öffentlichkeit", "Zentrale"]  # fmt: skip
    expect(shown_departments).to_have_text(by_department)
    # The two spellings of Einkauf are equal here: their usernames decide.
    expect(page.locator("table.list tbody tr").nth(2)).to_contain_text("user000701")
    expect(page.locator("table.list tbody tr").nth(3)).to_contain_text("user000705")
    screenshot(page, "users-sorted-by-department")
