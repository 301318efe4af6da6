"""The app's sign-in through the organization's OpenID provider (RFC 8252), driven end to end
against a real provider on loopback: the app opens Roster in a browser, the person signs in at
the provider, Roster validates the ID token and finds the user, and the app exchanges the
one-time code with its PKCE verifier. Every refusal says only that sign-in was not possible and
leaves its reason in the organization's audit trail (channel sso)."""

import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import sqlalchemy as sa

from roster import mail
from roster.domain.mode import Mode
from roster.domain.sso import check, s256
from roster.jobs import people
from roster.jobs.imports import run_import
from roster.oidc import Provider, TokenRefused, digest
from roster.sealing import seal
from roster.settings import Settings
from roster.store import sso, tenants
from roster.store.db import writing
from roster.store.directory_reads import user_id_of
from roster.store.schema import audit_events
from roster.web.app import create_app
from tests.factories import csv_bytes, person
from tests.oidc_provider import OpenIdProvider, query_of, running

APP = "com.example.roster:/signed-in"
NOT_POSSIBLE = "Sign-in was not possible"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "var", app_sign_in_attempts_per_minute=100)


@pytest.fixture
async def client(engine, settings):
    app = create_app(engine, settings=settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://roster"
    ) as client:
        client.app_state = app.state  # type: ignore[attr-defined]
        yield client
    await app.state.oidc.close()


def addr(tenant, n: int) -> str:
    return f"user{n:06d}@{tenant.slug}.example"


async def add_staff(engine, tenant, numbers, mode=Mode.ADD):
    rows = [person(n, CSV_EMAIL=addr(tenant, n)) for n in numbers]
    await run_import(engine, tenant.slug, csv_bytes(rows), mode=mode, channel="cli", actor="t")


async def configure(engine, settings, tenant, provider: OpenIdProvider, **changes):
    values = {"claim": "email", "codes_allowed": True, "redirect_uris": [APP]} | changes
    checked = check(provider.issuer, f"roster-{tenant.slug}", **values)
    async with writing(engine) as conn:
        sealed = seal(settings, "the client secret")
        await sso.configure(conn, tenant.id, checked, sealed, channel="cli", actor="t")


@pytest.fixture
async def staff(engine, settings, tenant, openid_provider):
    """The organization with three people and the provider set up."""
    await add_staff(engine, tenant, range(3))
    await configure(engine, settings, tenant, openid_provider)
    return tenant


@pytest.fixture
async def tenant_b(engine):
    async with writing(engine) as conn:
        return await tenants.create(conn, f"t-{secrets.token_hex(5)}", "Another organization")


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


async def open_sso(client, slug: str, challenge: str, redirect_uri: str = APP):
    params = {
        "organization": slug, "redirect_uri": redirect_uri, "code_challenge": challenge,
        "code_challenge_method": "S256", "state": "the-app-state",
    }  # fmt: skip
    return await client.get("/app/v1/sign-in/sso", params=params)


async def back_from_provider(client, provider: OpenIdProvider, slug: str, sub: str):
    """The app opens Roster, the person signs in at the provider as `sub` and comes back: the
    PKCE verifier and Roster's answer to the callback."""
    verifier, challenge = pkce()
    opened = await open_sso(client, slug, challenge)
    assert opened.status_code == 302, opened.text
    back = urlsplit(provider.sign_in(opened.headers["location"], sub))
    return verifier, await client.get(f"{back.path}?{back.query}")


async def exchange(client, code: str, verifier: str, redirect_uri: str = APP):
    body = {"code": code, "code_verifier": verifier, "redirect_uri": redirect_uri}
    return await client.post("/app/v1/sign-in/token", json=body)


async def sso_events(engine, tenant) -> list[tuple[str, dict]]:
    query = (
        sa.select(audit_events.c.action, audit_events.c.after)
        .where(audit_events.c.tenant_id == tenant.id, audit_events.c.channel == "sso")
        .order_by(audit_events.c.at)
    )
    async with engine.connect() as conn:
        return [(action, after) for action, after in await conn.execute(query)]


def refused_page(response: httpx.Response) -> None:
    assert response.status_code in (400, 403)
    assert NOT_POSSIBLE in response.text
    for reason in ("no present", "unknown, used", "expired", "audience", "redirect URI"):
        assert reason not in response.text  # why is for the audit trail alone


async def test_the_app_signs_in_through_the_provider(client, engine, staff, openid_provider):
    sub = f"{staff.slug}-1"
    openid_provider.person(sub, email=addr(staff, 1).upper())  # compared case-insensitively
    verifier, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    assert back.status_code == 302
    target = back.headers["location"]
    assert target.startswith(f"{APP}?")
    answer = query_of(target)
    assert answer["state"] == "the-app-state"
    tokens = await exchange(client, answer["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    me = await client.get(
        "/app/v1/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert me.status_code == 200 and me.json()["username"] == "user000001"
    refreshed = await client.post(
        "/app/v1/token/refresh", json={"refresh_token": tokens.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200  # the usual session: its refresh token rotates
    assert ("sso_signed_in", {"subject": addr(staff, 1).upper(), "client": "app"}) in (
        await sso_events(engine, staff)
    )
    # The one-time code works once.
    again = await exchange(client, answer["code"], verifier)
    assert again.status_code == 401 and again.json() == {"detail": f"{NOT_POSSIBLE}."}


async def test_preferred_username_names_the_username(
    client, engine, settings, staff, openid_provider
):
    await configure(engine, settings, staff, openid_provider, claim="preferred_username")
    sub = f"{staff.slug}-pu"
    openid_provider.person(sub, email="someone@else.example", preferred_username="USER000002")
    verifier, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    assert back.status_code == 302
    tokens = await exchange(client, query_of(back.headers["location"])["code"], verifier)
    assert tokens.status_code == 200


async def test_an_unknown_person_is_refused(client, engine, staff, openid_provider):
    sub = f"{staff.slug}-stranger"
    openid_provider.person(sub, email=f"stranger@{staff.slug}.example")
    _, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    refused_page(back)
    # The page offers the way back to the app, with OAuth's error and the app's state.
    assert "com.example.roster:/signed-in?error=access_denied" in back.text
    assert (await sso_events(engine, staff))[-1] == (
        "sso_refused",
        {"reason": "no present, active user of the organization",
         "subject": f"stranger@{staff.slug}.example", "client": "app"},
    )  # fmt: skip


async def test_an_address_the_provider_has_not_verified_is_refused(
    client, engine, staff, openid_provider
):
    sub = f"{staff.slug}-unverified"
    openid_provider.person(sub, email=addr(staff, 1), email_verified=False)
    _, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    refused_page(back)
    reason = (await sso_events(engine, staff))[-1][1]["reason"]
    assert reason == "e-mail address not verified by the provider"


async def test_an_inactive_person_is_refused(client, engine, staff, openid_provider):
    async with engine.connect() as conn:
        uid = await user_id_of(conn, staff.id, "user000001")
    await people.change(engine, staff.id, uid, {"active": False}, channel="console", actor="t")
    sub = f"{staff.slug}-inactive"
    openid_provider.person(sub, email=addr(staff, 1))
    _, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    refused_page(back)
    assert (await sso_events(engine, staff))[-1][1]["reason"] == (
        "no present, active user of the organization"
    )


async def test_another_organizations_user_is_refused(
    client, engine, staff, openid_provider, tenant_b
):
    await add_staff(engine, tenant_b, [7])
    sub = f"{staff.slug}-other-org"
    openid_provider.person(sub, email=addr(tenant_b, 7))  # a user of B signs in at A
    _, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    refused_page(back)
    assert (await sso_events(engine, staff))[-1][1]["subject"] == addr(tenant_b, 7)


async def test_a_user_removed_by_a_csv_replace_is_refused_next_time(
    client, engine, staff, openid_provider
):
    sub = f"{staff.slug}-leaver"
    openid_provider.person(sub, email=addr(staff, 2))
    verifier, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    tokens = await exchange(client, query_of(back.headers["location"])["code"], verifier)
    assert tokens.status_code == 200
    await add_staff(engine, staff, [0, 1], mode=Mode.REPLACE)  # user000002 leaves
    access = tokens.json()["access_token"]
    me = await client.get("/app/v1/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 401  # the app API's revocation, as ever
    _, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    refused_page(back)  # the provider still signs them in; Roster does not let them in


async def test_a_code_from_before_a_removal_no_longer_works(client, engine, staff, openid_provider):
    sub = f"{staff.slug}-quick-leaver"
    openid_provider.person(sub, email=addr(staff, 2))
    verifier, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    await add_staff(engine, staff, [0, 1], mode=Mode.REPLACE)
    tokens = await exchange(client, query_of(back.headers["location"])["code"], verifier)
    assert tokens.status_code == 401


async def test_an_expired_id_token_is_refused(client, engine, settings, tenant):
    await add_staff(engine, tenant, [1])
    with running(token_lifetime=timedelta(hours=-1)) as late:  # its tokens expired when issued
        await configure(engine, settings, tenant, late)
        late.person(f"{tenant.slug}-late", email=addr(tenant, 1))
        _, back = await back_from_provider(client, late, tenant.slug, f"{tenant.slug}-late")
    refused_page(back)
    assert (await sso_events(engine, tenant))[-1][1]["reason"] == "ID token: expired"


async def test_a_replayed_answer_is_refused(client, engine, staff, openid_provider):
    sub = f"{staff.slug}-replay"
    openid_provider.person(sub, email=addr(staff, 1))
    _, challenge = pkce()
    opened = await open_sso(client, staff.slug, challenge)
    back = urlsplit(openid_provider.sign_in(opened.headers["location"], sub))
    first = await client.get(f"{back.path}?{back.query}")
    assert first.status_code == 302
    replayed = await client.get(f"{back.path}?{back.query}")
    refused_page(replayed)
    assert (await sso_events(engine, staff))[-1][1]["reason"] == "state unknown, used or expired"


async def test_a_state_that_does_not_match_is_refused(client, engine, staff, openid_provider):
    sub = f"{staff.slug}-forged"
    openid_provider.person(sub, email=addr(staff, 1))
    _, challenge = pkce()
    opened = await open_sso(client, staff.slug, challenge)
    back = urlsplit(openid_provider.sign_in(opened.headers["location"], sub))
    forged = {**query_of(f"?{back.query}"), "state": f"{staff.id.hex}.{secrets.token_urlsafe(32)}"}
    response = await client.get(back.path, params=forged)
    refused_page(response)
    assert (await sso_events(engine, staff))[-1][1]["reason"] == "state unknown, used or expired"


async def test_the_verifier_and_redirect_uri_must_match(client, staff, openid_provider):
    sub = f"{staff.slug}-pkce"
    openid_provider.person(sub, email=addr(staff, 1))
    verifier, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    code = query_of(back.headers["location"])["code"]
    wrong = await exchange(client, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 401
    assert (await exchange(client, code, verifier)).status_code == 401  # tried once, spent
    verifier, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    code = query_of(back.headers["location"])["code"]
    assert (await exchange(client, code, verifier, "com.example.other:/x")).status_code == 401


async def test_unregistered_redirect_uris_are_refused(client, engine, staff):
    _, challenge = pkce()
    response = await open_sso(client, staff.slug, challenge, redirect_uri="https://evil.example/")
    refused_page(response)
    assert "location" not in response.headers
    assert (await sso_events(engine, staff))[-1][1]["reason"] == "unregistered redirect URI"
    plain = await client.get(
        "/app/v1/sign-in/sso",
        params={"organization": staff.slug, "redirect_uri": APP, "code_challenge": challenge,
                "code_challenge_method": "plain"},
    )  # fmt: skip
    refused_page(plain)


async def test_an_organization_without_a_provider_is_refused(client, tenant):
    _, challenge = pkce()
    refused_page(await open_sso(client, tenant.slug, challenge))


async def _token_for_another_app(provider: OpenIdProvider, sub: str) -> str:
    """A real ID token the provider issued to another application."""
    redirect, verifier = "http://127.0.0.1:9/elsewhere", "v" * 43
    oidc = Provider(5, 1024 * 1024, private_addresses=True)
    discovery = await oidc.discover(provider.issuer)
    authorize = oidc.authorization_url(discovery, "another-app", redirect, "s", "n", s256(verifier))
    code = query_of(provider.sign_in(authorize, sub))["code"]
    id_token = await oidc.redeem(discovery, "another-app", "x", code, redirect, verifier)
    await oidc.close()
    return id_token


async def test_a_token_for_another_audience_is_refused_in_the_flow(
    client, engine, staff, openid_provider, monkeypatch
):
    """The token endpoint's answer replaced by a real token of the same provider for another
    application (what a mix-up or an injected code would bring): signature, issuer and expiry
    hold, the audience does not."""
    sub = f"{staff.slug}-audience"
    openid_provider.person(sub, email=addr(staff, 1))
    foreign = await _token_for_another_app(openid_provider, sub)

    async def token_endpoint(*args, **kwargs):
        return foreign

    monkeypatch.setattr(client.app_state.oidc, "redeem", token_endpoint)
    _, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    refused_page(back)
    assert (await sso_events(engine, staff))[-1][1]["reason"] == "ID token: audience"


async def test_a_token_for_another_audience_is_refused(openid_provider, settings):
    """An ID token the provider issued to another application (a real one, signed by the
    provider's key) does not sign anyone in to Roster."""
    redirect = "http://127.0.0.1:9/elsewhere"
    oidc = Provider(5, 1024 * 1024, private_addresses=True)
    discovery = await oidc.discover(openid_provider.issuer)
    authorize = oidc.authorization_url(
        discovery, "another-app", redirect, "s", "the-nonce", s256("v" * 43)
    )
    openid_provider.person("audience-test", email="a@example.com")
    code = query_of(openid_provider.sign_in(authorize, "audience-test"))["code"]
    id_token = await oidc.redeem(discovery, "another-app", "x", code, redirect, "v" * 43)
    with pytest.raises(TokenRefused, match="audience"):
        await oidc.validate(discovery, "roster", id_token, digest("the-nonce"))
    with pytest.raises(TokenRefused, match="nonce"):
        await oidc.validate(discovery, "another-app", id_token, digest("another-nonce"))
    assert (await oidc.validate(discovery, "another-app", id_token, digest("the-nonce")))[
        "email"
    ] == "a@example.com"
    tampered = id_token[:-4] + ("AAAA" if not id_token.endswith("AAAA") else "BBBB")
    with pytest.raises(TokenRefused, match="signature"):
        await oidc.validate(discovery, "another-app", tampered, digest("the-nonce"))
    await oidc.close()


async def test_emailed_codes_stop_when_turned_off(client, engine, settings, staff, openid_provider):
    await configure(engine, settings, staff, openid_provider, codes_allowed=False)
    await client.post("/app/v1/sign-in/code", json={"email": addr(staff, 1)})
    await client.app_state.code_mail.drained()
    assert not [m for m in mail.outbox(settings) if m["to"] == addr(staff, 1)]


async def test_made_up_answers_are_limited_per_client(engine, tmp_path, staff):
    settings = Settings(data_dir=tmp_path / "limited", console_failed_logins_per_minute=2)
    app = create_app(engine, settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as limited:
        answers = [
            await limited.get(f"/sso/callback/{staff.slug}", params={
                "state": f"{staff.id.hex}.{secrets.token_urlsafe(32)}", "code": "c"})
            for _ in range(3)
        ]  # fmt: skip
    await app.state.oidc.close()
    assert [a.status_code for a in answers] == [403, 403, 429]
    assert len(await sso_events(engine, staff)) == 2  # the third was not looked at


def with_state(url: str, state: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"state": state}
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_an_answer_to_another_organizations_sign_in_is_never_redeemed(
    engine, settings, client, staff, tenant_b, openid_provider
):
    """The mix-up attack: an admin of organization A (whose provider they control) lures a
    person of B to B's real provider carrying A's state. B's provider sends the person back to
    B's own callback, where A's state is refused before the code goes to any provider."""
    await configure(engine, settings, tenant_b, openid_provider)
    sub = f"{staff.slug}-1"
    openid_provider.person(sub, email=addr(staff, 1))
    _, challenge = pkce()
    state_a = query_of((await open_sso(client, tenant_b.slug, challenge)).headers["location"])[
        "state"
    ]
    lure = with_state((await open_sso(client, staff.slug, challenge)).headers["location"], state_a)
    back = urlsplit(openid_provider.sign_in(lure, sub))
    assert back.path == f"/sso/callback/{staff.slug}"  # B's provider knows B's callback only
    answered = await client.get(f"{back.path}?{back.query}")
    refused_page(answered)
    assert "location" not in answered.headers
    assert ("sso_refused", {"reason": "an answer to another organization's sign-in"}) in [
        (action, {"reason": after.get("reason")})
        for action, after in await sso_events(engine, staff)
    ]


async def test_an_answer_finishes_only_in_the_browser_that_began_it(
    engine, settings, staff, openid_provider
):
    """Login CSRF: a sign-in someone began and completed at the provider, whose answer they
    send to another person's browser, gives that browser nothing."""
    sub = f"{staff.slug}-1"
    openid_provider.person(sub, email=addr(staff, 1))
    app = create_app(engine, settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="https://roster") as attacker,
        httpx.AsyncClient(transport=transport, base_url="https://roster") as victim,
    ):
        _, challenge = pkce()
        started = await open_sso(attacker, staff.slug, challenge)
        back = urlsplit(openid_provider.sign_in(started.headers["location"], sub))
        landed = await victim.get(f"{back.path}?{back.query}")
    await app.state.oidc.close()
    refused_page(landed)
    assert "code=" not in landed.headers.get("location", "")
    reasons = [after.get("reason") for _, after in await sso_events(engine, staff)]
    assert "the answer came to another browser than the one that began" in reasons


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"email_verified": "false"}, "e-mail address not verified by the provider"),
        ({"email_verified": False}, "e-mail address not verified by the provider"),
        ({"fullwidth": True}, "the claim is written in compatibility characters"),
    ],
)
async def test_a_claim_that_names_nobody_exactly_is_refused(
    engine, client, staff, openid_provider, claims, reason
):
    sub = f"{staff.slug}-{secrets.token_hex(3)}"
    email = addr(staff, 1)
    claims = dict(claims)  # the parameters serve both databases' runs
    if claims.pop("fullwidth", False):
        email = "\uff55" + email[1:]  # a full-width u: another account at the provider
    openid_provider.person(sub, email=email, **claims)
    _, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    refused_page(back)
    assert reason in [after.get("reason") for _, after in await sso_events(engine, staff)]


async def test_the_code_exchange_needs_the_redirect_uri(client, staff, openid_provider):
    sub = f"{staff.slug}-1"
    openid_provider.person(sub, email=addr(staff, 1))
    verifier, back = await back_from_provider(client, openid_provider, staff.slug, sub)
    code = query_of(back.headers["location"])["code"]
    body = {"code": code, "code_verifier": verifier}
    assert (await client.post("/app/v1/sign-in/token", json=body)).status_code == 401


async def test_text_a_visitor_writes_never_reaches_the_audit_trail(engine, client, staff):
    _, challenge = pkce()
    state = query_of((await open_sso(client, staff.slug, challenge)).headers["location"])["state"]
    written = "Call +31 20 555 0100 to restore your access"
    answered = await client.get(
        f"/sso/callback/{staff.slug}", params={"state": state, "error": written}
    )
    refused_page(answered)
    reasons = [after.get("reason") for _, after in await sso_events(engine, staff)]
    assert "provider answered another error" in reasons
    assert not any(written in str(reason) for reason in reasons)


async def test_a_provider_at_a_private_address_is_refused_unless_allowed(
    engine, tenant, openid_provider, tmp_path, caplog
):
    """An organization's admin names the provider: by default Roster calls no address of its
    own network through it (loopback here; the local network, link-local and cloud metadata
    alike)."""
    settings = Settings(data_dir=tmp_path / "var", sso_private_addresses=False)
    await add_staff(engine, tenant, range(1))
    await configure(engine, settings, tenant, openid_provider)
    app = create_app(engine, settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://roster") as client:
        _, challenge = pkce()
        opened = await open_sso(client, tenant.slug, challenge)
    await app.state.oidc.close()
    refused_page(opened)
    assert "provider unavailable" in [
        after.get("reason") for _, after in await sso_events(engine, tenant)
    ]
    assert "127.0.0.1 is a private address" in caplog.text
    assert not openid_provider.issuer.startswith("https")  # it is the loopback one indeed
