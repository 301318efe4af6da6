"""Sign-in through an organization's OpenID Connect provider, as stored: the provider's settings
(one per organization), the sign-ins sent to it and not yet back, the one-time codes the app
exchanges, and whom a claim names.

Attempts and codes are `<organization id>.<secret>` like sessions' tokens, stored as the
SHA-256 of the whole, single use, short-lived; each is taken in one conditional write, so of two
replicas finishing one sign-in exactly one does."""

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import key
from roster.domain.sso import MATCHES, ProviderSettings, SsoError
from roster.store.clock import now
from roster.store.directory import audit_event, record_events
from roster.store.schema import sso_attempts, sso_codes, sso_providers, tenants, users
from roster.store.sessions import TOKEN, digest, user_present

ATTEMPT_LIFETIME = timedelta(minutes=10)  # to sign in at the provider and come back
CODE_LIFETIME = timedelta(minutes=2)  # for the app to exchange its code
CHANNEL = "sso"


@dataclass(frozen=True, slots=True)
class Provider:
    tenant_id: UUID
    enabled: bool
    issuer: str
    client_id: str
    client_secret_sealed: str
    claim: str
    codes_allowed: bool
    redirect_uris: tuple[str, ...]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    tenant_id: UUID
    nonce_hash: str
    verifier_sealed: str
    client: str  # app, console
    redirect_uri: str | None
    code_challenge: str | None
    app_state: str | None
    next_path: str | None
    browser_hash: str  # the SHA-256 of the browser's binding cookie (web/sso.py)

    def began_in(self, browser: str) -> bool:
        """Whether the browser that came back is the one that started the attempt."""
        return hmac.compare_digest(self.browser_hash, digest(browser))


@dataclass(frozen=True, slots=True)
class Person:
    """Whom a claim names: a present, active user of the organization."""

    user_id: UUID
    username: str
    role: str


def _new_secret(tenant_id: UUID) -> str:
    return f"{tenant_id.hex}.{secrets.token_urlsafe(32)}"


def organization_of(presented: str) -> UUID | None:
    """The organization a state or code names; None when it cannot be one of ours."""
    match = TOKEN.fullmatch(presented or "")
    return UUID(match[1]) if match else None


def _provider(row: sa.Row[Any]) -> Provider:
    values = dict(row._mapping)
    values["redirect_uris"] = tuple(values["redirect_uris"] or ())
    return Provider(**{k: values[k] for k in Provider.__dataclass_fields__})


async def provider(conn: AsyncConnection, tenant_id: UUID) -> Provider | None:
    query = sa.select(sso_providers).where(sso_providers.c.tenant_id == tenant_id)
    row = (await conn.execute(query)).first()
    return _provider(row) if row else None


def _shown(settings: ProviderSettings | Provider) -> dict[str, Any]:
    """A provider's settings as the audit trail keeps them: never the secret."""
    return {
        "issuer": settings.issuer,
        "client_id": settings.client_id,
        "claim": settings.claim,
        "codes_allowed": settings.codes_allowed,
        "redirect_uris": list(settings.redirect_uris),
    }


async def configure(
    conn: AsyncConnection, tenant_id: UUID, settings: ProviderSettings, secret_sealed: str | None,
    *, channel: str, actor: str,
) -> None:  # fmt: skip
    """Set (and enable) the organization's provider; `secret_sealed` None keeps the secret it
    has (a provider without one needs one: ValueError)."""
    before = await provider(conn, tenant_id)
    if before is None and secret_sealed is None:
        raise SsoError("client secret: the provider's client secret is needed")
    values = {
        "enabled": True,
        "issuer": settings.issuer,
        "client_id": settings.client_id,
        "client_secret_sealed": secret_sealed or (before.client_secret_sealed if before else ""),
        "claim": settings.claim,
        "codes_allowed": settings.codes_allowed,
        "redirect_uris": list(settings.redirect_uris),
        "updated_at": now(),
    }
    if before is None:
        await conn.execute(sso_providers.insert().values(tenant_id=tenant_id, **values))
    else:
        await conn.execute(
            sso_providers.update().where(sso_providers.c.tenant_id == tenant_id).values(**values)
        )
    after = _shown(settings) | {"enabled": True, "secret_changed": secret_sealed is not None}
    shown_before = (_shown(before) | {"enabled": before.enabled}) if before else None
    await record_events(
        conn,
        [
            audit_event(
                tenant_id, now(), channel, actor, "sso_configured", before=shown_before, after=after
            )
        ],
    )


async def disable(conn: AsyncConnection, tenant_id: UUID, *, channel: str, actor: str) -> bool:
    """Turn the provider off (its settings are kept for turning it on again); whether it was on.
    Sign-ins under way at the provider are refused when they come back."""
    done = await conn.execute(
        sso_providers.update()
        .where(sso_providers.c.tenant_id == tenant_id, sso_providers.c.enabled.is_(True))
        .values(enabled=False, updated_at=now())
    )
    if done.rowcount:
        await record_events(
            conn,
            [audit_event(tenant_id, now(), channel, actor, "sso_disabled",
                         before={"enabled": True}, after={"enabled": False})],
        )  # fmt: skip
    return bool(done.rowcount)


async def codes_allowed(conn: AsyncConnection, tenant_id: UUID) -> bool:
    """Whether the app's e-mailed codes work for the organization: always without a provider
    turned on, else as its settings say."""
    query = sa.select(sso_providers.c.codes_allowed).where(
        sso_providers.c.tenant_id == tenant_id, sso_providers.c.enabled.is_(True)
    )
    allowed = (await conn.execute(query)).scalar_one_or_none()
    return allowed is None or bool(allowed)


# Attempts ------------------------------------------------------------------------------------


async def start(
    conn: AsyncConnection, tenant_id: UUID, nonce: str, verifier_sealed: str, client: str,
    browser: str, *, redirect_uri: str | None = None, code_challenge: str | None = None,
    app_state: str | None = None, next_path: str | None = None,
) -> str:  # fmt: skip
    """A new attempt of the browser whose binding secret is `browser`; its state, which only
    the provider's answer carries back."""
    state, at = _new_secret(tenant_id), now()
    await conn.execute(
        sso_attempts.insert().values(
            tenant_id=tenant_id, state_hash=digest(state), nonce_hash=digest(nonce),
            verifier_sealed=verifier_sealed, client=client, redirect_uri=redirect_uri,
            code_challenge=code_challenge, app_state=app_state, next_path=next_path,
            browser_hash=digest(browser), created_at=at, expires_at=at + ATTEMPT_LIFETIME,
        )
    )  # fmt: skip
    return state


async def take(conn: AsyncConnection, state: str) -> Attempt | None:
    """The live attempt of this state, used up; None when it is unknown, used or expired."""
    tenant_id = organization_of(state)
    if tenant_id is None:
        return None
    at = now()
    taken = await conn.execute(
        sso_attempts.update()
        .where(
            sso_attempts.c.tenant_id == tenant_id,
            sso_attempts.c.state_hash == digest(state),
            sso_attempts.c.used_at.is_(None),
            sso_attempts.c.expires_at > at,
        )
        .values(used_at=at)
        .returning(*(sso_attempts.c[name] for name in Attempt.__dataclass_fields__))
    )
    row = taken.first()
    return Attempt(*row) if row else None


# Whom a claim names --------------------------------------------------------------------------


async def person(conn: AsyncConnection, tenant_id: UUID, claim: str, value: str) -> Person | None:
    """The present, active user of this organization the claim's value names, compared as the
    directory compares names (`fields.key`); None for nobody, or for a value that names two
    people (one's username, another's address)."""
    wanted = key(value)
    columns = {"username": users.c.username_key, "email": users.c.email_key}
    match = sa.or_(*(columns[field] == wanted for field in MATCHES[claim]))
    query = sa.select(users.c.id, users.c.username, users.c.role).where(
        users.c.tenant_id == tenant_id,
        match,
        users.c.removed_at.is_(None),
        users.c.active.is_(True),
    )
    found = (await conn.execute(query.limit(2))).all()
    return Person(*found[0]) if len(found) == 1 else None


# The app's one-time codes --------------------------------------------------------------------


async def issue_code(
    conn: AsyncConnection, tenant_id: UUID, user_id: UUID, redirect_uri: str, challenge: str
) -> str:
    code, at = _new_secret(tenant_id), now()
    await conn.execute(
        sso_codes.insert().values(
            tenant_id=tenant_id, code_hash=digest(code), user_id=user_id,
            redirect_uri=redirect_uri, code_challenge=challenge, created_at=at,
            expires_at=at + CODE_LIFETIME,
        )
    )  # fmt: skip
    return code


@dataclass(frozen=True, slots=True)
class Redeemed:
    tenant_id: UUID
    user_id: UUID
    redirect_uri: str
    code_challenge: str


async def redeem_code(conn: AsyncConnection, code: str) -> Redeemed | None:
    """The live code's binding, used up (whether or not the caller then accepts the verifier:
    a code is tried once); None when it is unknown, used, expired, or its user is no longer a
    present, active one."""
    tenant_id = organization_of(code)
    if tenant_id is None:
        return None
    at = now()
    taken = await conn.execute(
        sso_codes.update()
        .where(
            sso_codes.c.tenant_id == tenant_id,
            sso_codes.c.code_hash == digest(code),
            sso_codes.c.used_at.is_(None),
            sso_codes.c.expires_at > at,
            user_present(sso_codes),
        )
        .values(used_at=at)
        .returning(sso_codes.c.user_id, sso_codes.c.redirect_uri, sso_codes.c.code_challenge)
    )
    row = taken.first()
    return Redeemed(tenant_id, *row) if row else None


# The audit trail -----------------------------------------------------------------------------


async def record(
    conn: AsyncConnection, tenant_id: UUID, action: str, *, reason: str | None = None,
    user_id: UUID | None = None, subject: str | None = None, client: str | None = None,
) -> None:  # fmt: skip
    """An SSO sign-in or a refusal and why, in the organization's audit trail (channel sso);
    nothing for an organization that does not exist (a made-up state or code names one)."""
    known = sa.select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)
    if (await conn.execute(known)).first() is None:
        return
    after = {k: v for k, v in (("reason", reason), ("subject", subject), ("client", client)) if v}
    actor = (subject or "unknown")[:200]
    await record_events(
        conn, [audit_event(tenant_id, now(), CHANNEL, actor, action, user_id=user_id, after=after)]
    )


async def forget_expired(conn: AsyncConnection) -> int:
    """Forget attempts and codes past their lifetime (used or not); how many."""
    at = now()
    gone = 0
    for table in (sso_attempts, sso_codes):
        gone += (await conn.execute(table.delete().where(table.c.expires_at < at))).rowcount
    return gone
