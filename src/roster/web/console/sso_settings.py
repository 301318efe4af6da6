"""Integrations, Sign-in: the organization's OpenID Connect provider, set and turned off on the
integrations page (the client secret sealed, never shown again; an empty one keeps it)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from roster.domain.sso import SsoError, check
from roster.sealing import SealError, seal
from roster.store import sso
from roster.store.db import writing
from roster.web.console.common import Writing
from roster.web.console.integrations import HERE, back_to_section, show_page

router = APIRouter()


@router.post(f"{HERE}/sso", response_class=HTMLResponse)
async def save_provider(
    request: Request,
    console: Writing,
    issuer: Annotated[str, Form(max_length=500)] = "",
    client_id: Annotated[str, Form(max_length=255)] = "",
    client_secret: Annotated[str, Form(max_length=2000)] = "",
    claim: Annotated[str, Form(max_length=30)] = "email",
    codes_allowed: Annotated[str | None, Form(max_length=5)] = None,
    redirect_uris: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    sent = {
        "issuer": issuer, "client_id": client_id, "claim": claim,
        "codes_allowed": codes_allowed is not None, "redirect_uris": redirect_uris,
    }  # fmt: skip
    try:
        checked = check(
            issuer, client_id, claim, codes_allowed is not None, redirect_uris.splitlines()
        )
        sealed = seal(console.settings, client_secret.strip()) if client_secret.strip() else None
        async with writing(console.engine) as conn:
            await sso.configure(
                conn, console.tenant.id, checked, sealed, channel="console", actor=console.actor
            )
    except (SsoError, SealError) as error:
        return await show_page(request, console, f"Sign-in provider: {error}.", 400, sso_sent=sent)
    return back_to_section(console, "sso", "Sign-in through the provider is on.")


@router.post(f"{HERE}/sso/disable")
async def disable_provider(console: Writing) -> Response:
    async with writing(console.engine) as conn:
        await sso.disable(conn, console.tenant.id, channel="console", actor=console.actor)
    return back_to_section(console, "sso", "Sign-in through the provider is off.")
