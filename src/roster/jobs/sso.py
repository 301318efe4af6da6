"""Signing in through an organization's OpenID Connect provider, for the app and the console:
`begin` sends the person to the provider, `finish` takes the answer, validates the ID token and
finds the user, `exchange` turns the app's one-time code into a session.

Roster stays the gate: only a present, active user of the organization (an admin, for the
console) gets in, whatever the provider says. Every refusal raises `Refused` with the reason
kept in the organization's audit trail (channel sso); the person is told only that sign-in was
not possible."""

import logging
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from roster.domain import sso as rules
from roster.domain.fields import key
from roster.oidc import Provider, ProviderError, TokenRefused
from roster.sealing import SealError, seal, unseal
from roster.settings import Settings
from roster.store import admins, sessions, sso, tenants
from roster.store.clock import now
from roster.store.db import writing

log = logging.getLogger("roster.sso")
CALLBACK = "/sso/callback"


class Refused(Exception):
    """Sign-in was not possible; `reason` is for the audit trail and the log, never the person.
    `attempt` is the attempt taken, when there was one (the app is sent back to it)."""

    def __init__(self, reason: str, attempt: sso.Attempt | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempt = attempt


@dataclass(frozen=True, slots=True)
class Finished:
    attempt: sso.Attempt
    person: sso.Person
    admin: admins.Admin | None  # the console's admin


def callback_url(settings: Settings, slug: str) -> str:
    """The redirect URL the organization registers at its provider: one of its own, so that an
    answer is only ever redeemed at the provider of the organization it came back to (an
    answer that one provider sent back with another organization's state is refused before
    its code goes anywhere: the mix-up attack)."""
    return f"{settings.console_url}{CALLBACK}/{slug}"


async def _refuse(
    engine: AsyncEngine, tenant_id: UUID | None, reason: str, *, subject: str | None = None,
    client: str | None = None, attempt: sso.Attempt | None = None,
) -> Refused:  # fmt: skip
    log.info("sso sign-in refused: %s", reason)
    if tenant_id is not None:
        async with writing(engine) as conn:
            await sso.record(
                conn, tenant_id, "sso_refused", reason=reason, subject=subject, client=client
            )
    return Refused(reason, attempt)


async def provider_of(engine: AsyncEngine, slug: str) -> tuple[tenants.Tenant, sso.Provider] | None:
    """The organization and its provider, when it has one turned on."""
    async with engine.connect() as conn:
        tenant = await tenants.find(conn, slug.strip().lower())
        found = await sso.provider(conn, tenant.id) if tenant else None
    return (tenant, found) if tenant and found and found.enabled else None


async def begin(
    engine: AsyncEngine, settings: Settings, oidc: Provider, slug: str, client: str,
    browser: str, *, redirect_uri: str | None = None, code_challenge: str | None = None,
    app_state: str | None = None, next_path: str | None = None,
) -> str:  # fmt: skip
    """The provider's authorization URL for a new attempt of this organization, made by the
    browser whose binding secret is `browser` (only that browser may finish it)."""
    found = await provider_of(engine, slug)
    if found is None:
        raise Refused("no provider")  # no organization's audit trail to write in
    tenant, provider = found
    if client == "app":
        if redirect_uri not in provider.redirect_uris:
            raise await _refuse(engine, tenant.id, "unregistered redirect URI", client=client)
        if not code_challenge or not rules.CHALLENGE.fullmatch(code_challenge):
            raise await _refuse(engine, tenant.id, "no S256 code challenge", client=client)
    try:
        discovery = await oidc.discover(provider.issuer)
    except ProviderError as error:
        log.warning("sso provider of %s unavailable: %s", tenant.slug, error)
        raise await _refuse(engine, tenant.id, "provider unavailable", client=client) from None
    nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    try:
        sealed = seal(settings, verifier)
    except SealError as error:
        raise await _refuse(engine, tenant.id, str(error), client=client) from None
    async with writing(engine) as conn:
        state = await sso.start(
            conn, tenant.id, nonce, sealed, client, browser, redirect_uri=redirect_uri,
            code_challenge=code_challenge, app_state=app_state, next_path=next_path,
        )  # fmt: skip
    return oidc.authorization_url(
        discovery, provider.client_id, callback_url(settings, tenant.slug), state, nonce,
        rules.s256(verifier),
    )  # fmt: skip


def _claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and 0 < len(value) <= 320 else None


@dataclass(frozen=True, slots=True)
class Answer:
    """What the provider sent the browser back with, to an organization's callback."""

    slug: str  # the organization whose callback it came to
    state: str
    code: str | None
    error: str | None
    issuer: str | None  # RFC 9207's `iss`, when the provider sends it
    browser: str  # the binding secret of the browser that came back ("" for none)


async def finish(
    engine: AsyncEngine, settings: Settings, oidc: Provider, answer: Answer
) -> Finished:
    """The provider's answer to an attempt, checked whole; Refused when anything fails."""
    async with engine.connect() as conn:
        arrived = await tenants.find(conn, answer.slug)
    stated = sso.organization_of(answer.state)
    if arrived is None or arrived.id != stated:
        # Another organization's sign-in, sent back here: its code is never redeemed.
        raise await _refuse(
            engine, arrived.id if arrived else None, "an answer to another organization's sign-in"
        )
    async with writing(engine) as conn:
        attempt = await sso.take(conn, answer.state)
    if attempt is None:
        raise await _refuse(engine, stated, "state unknown, used or expired")
    tenant_id, client = attempt.tenant_id, attempt.client

    async def refuse(reason: str, subject: str | None = None) -> Refused:
        return await _refuse(
            engine, tenant_id, reason, subject=subject, client=client, attempt=attempt
        )

    if not attempt.began_in(answer.browser):  # a sign-in begun elsewhere: login CSRF
        raise await refuse("the answer came to another browser than the one that began")
    if answer.error or not answer.code:
        said = answer.error if answer.error in rules.PROVIDER_ERRORS else "another error"
        raise await refuse(f"provider answered {said if answer.error else 'without a code'}")
    async with engine.connect() as conn:
        provider = await sso.provider(conn, tenant_id)
    if provider is None or not provider.enabled:
        raise await refuse("provider turned off")
    try:
        discovery = await oidc.discover(provider.issuer)
        if answer.issuer is not None and answer.issuer != discovery.issuer:
            raise await refuse("the answer names another issuer (RFC 9207)")
        secret = unseal(settings, provider.client_secret_sealed)
        verifier = unseal(settings, attempt.verifier_sealed)
        id_token = await oidc.redeem(
            discovery, provider.client_id, secret, answer.code,
            callback_url(settings, answer.slug), verifier,
        )  # fmt: skip
        claims = await oidc.validate(discovery, provider.client_id, id_token, attempt.nonce_hash)
    except (ProviderError, SealError) as failure:
        log.warning("sso sign-in of %s: provider unavailable: %s", answer.slug, failure)
        raise await refuse("provider unavailable") from None
    except TokenRefused as refused:
        raise await refuse(f"ID token: {refused.reason}") from None
    subject = _claim(claims, provider.claim)
    if subject is None:
        raise await refuse(f"no {provider.claim} claim in the ID token")
    # A provider that says an address is unverified is not vouching for it (Okta sends the
    # flag, some providers as text; Entra ID sends none, and then the address is its
    # directory's).
    verified = claims.get("email_verified", True)
    if provider.claim == "email" and verified is not True and verified != "true":
        raise await refuse("e-mail address not verified by the provider", subject)
    # The directory compares names folded to compatibility forms; a provider does not: a
    # full-width or ligature spelling is another account there, never this directory's user.
    if key(subject) != unicodedata.normalize("NFC", subject).casefold():
        raise await refuse("the claim is written in compatibility characters", subject)
    async with engine.connect() as conn:
        person = await sso.person(conn, tenant_id, provider.claim, subject)
        admin = await admins.get(conn, tenant_id, person.user_id) if person else None
    if person is None:
        raise await refuse("no present, active user of the organization", subject)
    if client == "console" and (admin is None or not admin.is_admin):
        raise await refuse("not an admin", subject)
    if client == "console" and admin is not None and admin.locked(now()):
        raise await refuse("the admin's account is locked after failed sign-ins", subject)
    async with writing(engine) as conn:
        await sso.record(conn, tenant_id, "sso_signed_in", user_id=person.user_id,
                         subject=subject, client=client)  # fmt: skip
    return Finished(attempt, person, admin)


async def app_code(engine: AsyncEngine, finished: Finished) -> str:
    """The one-time code the app exchanges for tokens."""
    attempt = finished.attempt
    assert attempt.redirect_uri and attempt.code_challenge
    async with writing(engine) as conn:
        return await sso.issue_code(
            conn, attempt.tenant_id, finished.person.user_id, attempt.redirect_uri,
            attempt.code_challenge,
        )  # fmt: skip


async def exchange(
    engine: AsyncEngine, code: str, verifier: str, redirect_uri: str
) -> tuple[str, str]:
    """The app's access and refresh tokens for its one-time code, PKCE verifier and the
    redirect URI the code was sent to (RFC 6749 4.1.3: the same, exactly)."""
    async with writing(engine) as conn:
        redeemed = await sso.redeem_code(conn, code)
        if (
            redeemed is not None
            and rules.verifier_matches(verifier, redeemed.code_challenge)
            and redirect_uri == redeemed.redirect_uri
        ):
            _, access, refresh = await sessions.create_app(
                conn, redeemed.tenant_id, redeemed.user_id, sessions.ACCESS, sessions.REFRESH
            )
            return access, refresh
    tenant_id = redeemed.tenant_id if redeemed else sso.organization_of(code)
    reason = (
        "code unknown, used or expired" if redeemed is None else "code verifier or redirect URI"
    )
    raise await _refuse(engine, tenant_id, reason, client="app")
