"""Signing in through an organization's OpenID Connect provider, for the app and the console:
`begin` sends the person to the provider, `finish` takes the answer, validates the ID token and
finds the user, `exchange` turns the app's one-time code into a session.

Roster stays the gate: only a present, active user of the organization (an admin, for the
console) gets in, whatever the provider says. Every refusal raises `Refused` with the reason
kept in the organization's audit trail (channel sso); the person is told only that sign-in was
not possible."""

import logging
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from roster.domain import sso as rules
from roster.oidc import Provider, ProviderError, TokenRefused
from roster.sealing import SealError, seal, unseal
from roster.settings import Settings
from roster.store import admins, sessions, sso, tenants
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


def callback_url(settings: Settings) -> str:
    """The redirect URL to register at the provider (one for every organization)."""
    return f"{settings.console_url}{CALLBACK}"


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
    engine: AsyncEngine, settings: Settings, oidc: Provider, slug: str, client: str, *,
    redirect_uri: str | None = None, code_challenge: str | None = None,
    app_state: str | None = None, next_path: str | None = None,
) -> str:  # fmt: skip
    """The provider's authorization URL for a new attempt of this organization."""
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
        raise await _refuse(
            engine, tenant.id, f"provider unavailable: {error}", client=client
        ) from None
    nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    try:
        sealed = seal(settings, verifier)
    except SealError as error:
        raise await _refuse(engine, tenant.id, str(error), client=client) from None
    async with writing(engine) as conn:
        state = await sso.start(
            conn, tenant.id, nonce, sealed, client, redirect_uri=redirect_uri,
            code_challenge=code_challenge, app_state=app_state, next_path=next_path,
        )  # fmt: skip
    return oidc.authorization_url(
        discovery, provider.client_id, callback_url(settings), state, nonce, rules.s256(verifier)
    )


def _claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and 0 < len(value) <= 320 else None


async def finish(
    engine: AsyncEngine, settings: Settings, oidc: Provider, state: str, code: str | None,
    error: str | None,
) -> Finished:  # fmt: skip
    """The provider's answer to an attempt, checked whole; Refused when anything fails."""
    async with writing(engine) as conn:
        attempt = await sso.take(conn, state)
    tenant_id = sso.organization_of(state)
    if attempt is None:
        raise await _refuse(engine, tenant_id, "state unknown, used or expired")
    tenant_id, client = attempt.tenant_id, attempt.client

    async def refuse(reason: str, subject: str | None = None) -> Refused:
        return await _refuse(
            engine, tenant_id, reason, subject=subject, client=client, attempt=attempt
        )

    if error or not code:
        raise await refuse(f"provider answered {(error or 'without a code')[:60]}")
    async with engine.connect() as conn:
        provider = await sso.provider(conn, tenant_id)
    if provider is None or not provider.enabled:
        raise await refuse("provider turned off")
    try:
        discovery = await oidc.discover(provider.issuer)
        secret = unseal(settings, provider.client_secret_sealed)
        verifier = unseal(settings, attempt.verifier_sealed)
        id_token = await oidc.redeem(
            discovery, provider.client_id, secret, code, callback_url(settings), verifier
        )
        claims = await oidc.validate(discovery, provider.client_id, id_token, attempt.nonce_hash)
    except (ProviderError, SealError) as failure:
        raise await refuse(f"provider unavailable: {failure}") from None
    except TokenRefused as refused:
        raise await refuse(f"ID token: {refused.reason}") from None
    subject = _claim(claims, provider.claim)
    if subject is None:
        raise await refuse(f"no {provider.claim} claim in the ID token")
    # A provider that says an address is unverified is not vouching for it (Okta sends the
    # flag; Entra ID sends none, and then the address is its directory's).
    if provider.claim == "email" and claims.get("email_verified") is False:
        raise await refuse("e-mail address not verified by the provider", subject)
    async with engine.connect() as conn:
        person = await sso.person(conn, tenant_id, provider.claim, subject)
        admin = await admins.get(conn, tenant_id, person.user_id) if person else None
    if person is None:
        raise await refuse("no present, active user of the organization", subject)
    if client == "console" and (admin is None or not admin.is_admin):
        raise await refuse("not an admin", subject)
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
    engine: AsyncEngine, code: str, verifier: str, redirect_uri: str | None
) -> tuple[str, str]:
    """The app's access and refresh tokens for its one-time code and PKCE verifier (and the
    redirect URI it was sent to, when given: it must be the same)."""
    async with writing(engine) as conn:
        redeemed = await sso.redeem_code(conn, code)
        if (
            redeemed is not None
            and rules.verifier_matches(verifier, redeemed.code_challenge)
            and (redirect_uri is None or redirect_uri == redeemed.redirect_uri)
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
