"""`roster sso`: the organization's OpenID Connect provider (set, show, disable) and a key for
sealing its client secret."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roster.cli.common import (
    JsonOption,
    TenantOption,
    err,
    fail,
    operator,
    out,
    print_json,
    run,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

sso_app = typer.Typer(
    help="Sign-in through the organization's OpenID Connect provider (Entra ID, Okta).",
    no_args_is_help=True,
)


def _secret_from_stdin() -> str:
    """The client secret: the first line of standard input, or asked for at a terminal."""
    if sys.stdin.isatty():
        return getpass.getpass("Client secret (empty keeps the current one): ").strip()
    return sys.stdin.readline().strip()


@sso_app.command("set")
def sso_set(
    tenant: TenantOption,
    issuer: Annotated[str, typer.Option("--issuer", help="The provider's issuer URL.")],
    client_id: Annotated[str, typer.Option("--client-id", help="The application (client) id.")],
    claim: Annotated[
        str,
        typer.Option(
            "--claim",
            help="Which ID token claim names the user: email (matched to the e-mail address), "
            "preferred_username or upn (matched to the username or the e-mail address).",
        ),
    ] = "email",
    codes: Annotated[
        bool,
        typer.Option("--codes/--no-codes", help="Whether the app's e-mailed codes still work."),
    ] = True,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--redirect-uri", help="An app redirect URI to accept (repeat for more)."),
    ] = None,
) -> None:
    """Set and turn on the provider; the client secret is read from standard input (an empty
    one keeps the secret already set). It is kept sealed and never shown again."""
    from roster.domain.sso import SsoError, check
    from roster.sealing import seal
    from roster.settings import get_settings
    from roster.store import sso, tenants
    from roster.store.db import writing

    try:
        checked = check(issuer, client_id, claim, codes, list(redirect_uri or []))
    except SsoError as error:
        fail(2, "refused", str(error), False)
    secret = _secret_from_stdin()
    sealed = seal(get_settings(), secret) if secret else None

    async def work(engine: AsyncEngine) -> None:
        async with writing(engine) as conn:
            found = await tenants.get(conn, tenant)
            await sso.configure(conn, found.id, checked, sealed, channel="cli", actor=operator())

    run(work)
    err.print(f"Sign-in through {checked.issuer} is on for {tenant}.")


@sso_app.command("show")
def sso_show(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """The provider's settings (never the secret) and the redirect URL to register there."""
    from roster.jobs.sso import callback_url
    from roster.settings import get_settings
    from roster.store import sso, tenants

    async def work(engine: AsyncEngine) -> sso.Provider | None:
        async with engine.connect() as conn:
            return await sso.provider(conn, (await tenants.get(conn, tenant)).id)

    found = run(work, as_json)
    shown: dict[str, Any] = {"redirect_url_to_register": callback_url(get_settings(), tenant)}
    if found is not None:
        shown |= {
            "enabled": found.enabled,
            "issuer": found.issuer,
            "client_id": found.client_id,
            "claim": found.claim,
            "codes_allowed": found.codes_allowed,
            "app_redirect_uris": list(found.redirect_uris),
            "updated_at": found.updated_at.isoformat(),
        }
    else:
        shown["enabled"] = False
    if as_json:
        print_json(shown)
        return
    for name, value in shown.items():
        text = ", ".join(value) if isinstance(value, list) else str(value)
        out.print(f"{name}: {text or '-'}", highlight=False)


@sso_app.command("disable")
def sso_disable(tenant: TenantOption) -> None:
    """Turn sign-in through the provider off (its settings are kept)."""
    from roster.store import sso, tenants
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> bool:
        async with writing(engine) as conn:
            found = await tenants.get(conn, tenant)
            return await sso.disable(conn, found.id, channel="cli", actor=operator())

    was_on = run(work)
    err.print("Sign-in through the provider is off." if was_on else "It was off already.")


@sso_app.command("key")
def sso_key() -> None:
    """Print a new key for ROSTER_SECRET_KEY (the key that seals client secrets)."""
    from roster.sealing import new_key

    sys.stdout.write(new_key() + "\n")
