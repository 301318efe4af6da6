"""Integrations: SCIM tokens and attribute mapping, the SFTP drop box and its pickups (and the
sign-in provider, whose forms are web/console/sso_settings.py). Every
form posts to its own route and comes back to the page (303), or shows the page again with an
error naming the field."""

import asyncio
from typing import Annotated, Any
from uuid import UUID

import asyncssh
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from roster.domain import schedule
from roster.domain.mapping import DEFAULT, MANDATORY, SOURCES, MappingError, check_choice
from roster.domain.passwords import PasswordError, hash_password
from roster.domain.schedule import ScheduleError
from roster.domain.sso import CLAIMS
from roster.jobs import pickup as pickups
from roster.jobs.dropbox_files import Folders
from roster.jobs.sso import callback_url
from roster.sftp import host_key
from roster.store import dropboxes, recent_imports, scim_tokens, sso, tenants
from roster.store.db import writing
from roster.store.imports import ImportStatus
from roster.web.console.common import (
    FIELD_LABELS,
    Admin,
    Console,
    Writing,
    back_to,
    checked_fields,
    page,
)

router = APIRouter()
HERE = "/integrations"


def back_to_section(console: Console, section: str, message: str) -> Response:
    """Back to the page, scrolled to the section the form was in (the fragment goes last)."""
    response = back_to(HERE, message, console)
    response.headers["location"] += f"#{section}"
    return response


def _folders(console: Console) -> Folders:
    return Folders.of(console.settings)


async def show_page(
    request: Request, console: Console, error: str | None = None, status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:  # fmt: skip
    tenant_id = console.tenant.id
    async with console.engine.connect() as conn:
        tokens = await scim_tokens.listed(conn, tenant_id)
        mapping = await tenants.scim_mapping(conn, tenant_id)
        box = await dropboxes.find(conn, tenant_id)
        keys = await dropboxes.keys(conn, tenant_id) if box else []
        history = await recent_imports.by_channel(conn, tenant_id, pickups.CHANNEL)
        provider = await sso.provider(conn, tenant_id)
    sync = await pickups.status(console.engine, console.tenant.slug) if box else None
    settings = console.settings
    return page(
        request, "integrations/page.html", console, status_code=status_code, error=error,
        tokens=tokens, mapping=mapping, default=DEFAULT, sources=sorted(SOURCES),
        mandatory=MANDATORY, labels=FIELD_LABELS, box=box, keys=keys, history=history,
        sync=sync, tenant=console.tenant,
        sftp_host=settings.sftp_host, sftp_port=settings.sftp_port,
        fingerprint=host_key(settings.data_dir).get_fingerprint("sha256") if box else None,
        scim_url=f"{request.base_url}scim/v2", provider=provider, claims=CLAIMS,
        callback_url=callback_url(settings, console.tenant.slug), **extra,
    )  # fmt: skip


@router.get(HERE, response_class=HTMLResponse)
async def integrations_page(request: Request, console: Admin) -> Response:
    return await show_page(request, console)


# SCIM tokens ---------------------------------------------------------------------------------


NEW_TOKEN_COOKIE = "roster_new_scim_token"  # noqa: S105 (the cookie's name)


@router.post(f"{HERE}/scim-tokens", response_class=HTMLResponse)
async def create_token(
    request: Request, console: Writing, name: Annotated[str, Form()] = ""
) -> Response:
    try:
        async with writing(console.engine) as conn:
            token, secret = await scim_tokens.create(conn, console.tenant.id, name)
    except ValueError as error:
        return await show_page(request, console, f"Token name: {error}.", status_code=400)
    # The secret is shown once, by the page this answer sends the browser to (so a reload
    # makes no second token): it travels there in a cookie only that page receives, for a
    # minute, and Roster keeps only its hash.
    shown = f"{HERE}/scim-tokens/{token.id}/created"
    response = back_to(shown)
    response.set_cookie(
        NEW_TOKEN_COOKIE, secret, max_age=60, path=shown, httponly=True, samesite="strict",
        secure=console.settings.console_secure_cookies,
    )  # fmt: skip
    return response


@router.get(f"{HERE}/scim-tokens/{{token_id}}/created", response_class=HTMLResponse)
async def created_token(request: Request, console: Admin, token_id: UUID) -> Response:
    token = await _live_token(console, token_id)
    if token is None:
        return back_to(HERE, "That token is revoked or does not exist.", console)
    secret = request.cookies.get(NEW_TOKEN_COOKIE, "")
    async with console.engine.connect() as conn:
        found = await scim_tokens.authenticate(conn, secret) if secret else None
    scim_url = f"{request.base_url}scim/v2"
    response = page(
        request, "integrations/token.html", console, token=token,
        secret=secret if found is not None and found.id == token.id else None,
        scim_url=scim_url, https=scim_url.startswith("https://"),
    )  # fmt: skip
    response.delete_cookie(NEW_TOKEN_COOKIE, path=request.url.path)
    return response


async def _live_token(console: Console, token_id: UUID) -> scim_tokens.Token | None:
    async with console.engine.connect() as conn:
        listed = await scim_tokens.listed(conn, console.tenant.id)
    return next((t for t in listed if t.id == token_id and t.revoked_at is None), None)


@router.get(f"{HERE}/scim-tokens/{{token_id}}/revoke", response_class=HTMLResponse)
async def confirm_revoke(request: Request, console: Admin, token_id: UUID) -> Response:
    token = await _live_token(console, token_id)
    if token is None:
        return back_to(HERE, "That token is already revoked or does not exist.", console)
    return page(request, "integrations/revoke.html", console, token=token)


@router.post(f"{HERE}/scim-tokens/{{token_id}}/revoke")
async def revoke_token(request: Request, console: Writing, token_id: UUID) -> Response:
    async with writing(console.engine) as conn:
        revoked = await scim_tokens.revoke(conn, console.tenant.id, token_id)
    forget_verified_tokens(request)
    message = "The token is revoked." if revoked else "That token was already revoked."
    return back_to(HERE, message, console)


def forget_verified_tokens(request: Request) -> None:
    """This process's SCIM token cache holds revocations and mappings for a few seconds; a
    change made here takes effect at once (other processes: within TOKEN_CACHE_SECONDS)."""
    request.app.state.scim_tokens.clear()


# SCIM attribute mapping ----------------------------------------------------------------------


@router.post(f"{HERE}/mapping", response_class=HTMLResponse)
async def save_mapping(request: Request, console: Writing) -> Response:
    form = await request.form()
    chosen: dict[str, str | None] = {}
    for field in DEFAULT:
        raw = str(form.get(field, "default"))
        source = None if raw == "off" else raw
        try:
            check_choice(field, DEFAULT[field] if source == "default" else source)
        except MappingError as error:
            return await show_page(
                request, console, f"{FIELD_LABELS[field]}: {error}.", status_code=400
            )
        # Choosing the default source explicitly is the same as "default": kept as no choice.
        chosen[field] = "default" if source == DEFAULT[field] else source
    async with writing(console.engine) as conn:  # all fields or none
        for field, source in chosen.items():
            await tenants.choose_scim_source(conn, console.tenant.id, field, source)
    forget_verified_tokens(request)  # the mapping travels with a verified token
    return back_to_section(console, "mapping", "The attribute mapping is saved.")


# SFTP drop box -------------------------------------------------------------------------------


@router.post(f"{HERE}/dropbox/enable")
async def enable_dropbox(console: Writing) -> Response:
    async with writing(console.engine) as conn:
        box = await dropboxes.enable(conn, console.tenant.id, console.tenant.timezone)
    _folders(console).prepare(box.slug)
    return back_to_section(console, "dropbox", "The drop box is enabled.")


@router.post(f"{HERE}/dropbox/disable")
async def disable_dropbox(console: Writing) -> Response:
    async with writing(console.engine) as conn:
        await dropboxes.disable(conn, console.tenant.id)
    return back_to_section(console, "dropbox", "The drop box is disabled; nothing is picked up.")


@router.post(f"{HERE}/dropbox/password", response_class=HTMLResponse)
async def set_password(
    request: Request, console: Writing, password: Annotated[str, Form()] = ""
) -> Response:
    try:
        hashed = await asyncio.to_thread(hash_password, password)  # argon2 takes a while
        async with writing(console.engine) as conn:
            await dropboxes.set_password(conn, console.tenant.id, hashed)
    except (PasswordError, dropboxes.DropboxError) as error:
        return await show_page(request, console, f"Drop box password: {error}.", status_code=400)
    return back_to_section(console, "dropbox", "The drop box password is set.")


def _public_key(text: str) -> tuple[str, str, str]:
    """(fingerprint, OpenSSH text, comment) of a pasted public key, or a DropboxError."""
    if "PRIVATE KEY" in text:
        raise dropboxes.DropboxError(
            "that is a private key: paste the public one (the .pub file) and keep this one secret"
        )
    try:
        key = asyncssh.import_public_key(text.strip())
    except (asyncssh.KeyImportError, ValueError):
        raise dropboxes.DropboxError(
            "that is not an OpenSSH public key: paste one line such as 'ssh-ed25519 AAAA… name'"
        ) from None
    openssh = key.export_public_key("openssh").decode().strip()
    return key.get_fingerprint("sha256"), openssh, key.get_comment() or "pasted key"


@router.post(f"{HERE}/dropbox/keys", response_class=HTMLResponse)
async def add_key(
    request: Request, console: Writing, public_key: Annotated[str, Form()] = ""
) -> Response:
    try:
        fingerprint, openssh, comment = _public_key(public_key)
        async with writing(console.engine) as conn:
            await dropboxes.add_key(conn, console.tenant.id, fingerprint, openssh, comment)
    except dropboxes.DropboxError as error:
        return await show_page(request, console, f"Public key: {error}.", status_code=400)
    return back_to_section(console, "dropbox", f"The key {fingerprint} may log in.")


@router.post(f"{HERE}/dropbox/keys/remove", response_class=HTMLResponse)
async def remove_key(
    request: Request, console: Writing, fingerprint: Annotated[str, Form()] = ""
) -> Response:
    try:
        async with writing(console.engine) as conn:
            await dropboxes.remove_key(conn, console.tenant.id, fingerprint)
    except dropboxes.DropboxError as error:
        return await show_page(request, console, f"Public key: {error}.", status_code=400)
    return back_to_section(console, "dropbox", f"The key {fingerprint} is removed.")


@router.post(f"{HERE}/dropbox/settings", response_class=HTMLResponse)
async def save_settings(
    request: Request,
    console: Writing,
    daily_time: Annotated[str, Form()] = "",
    file_name: Annotated[str, Form()] = "",
    process_on_upload: Annotated[str | None, Form()] = None,
) -> Response:
    form = {"daily_time": daily_time, "file_name": file_name}
    _, errors = checked_fields(  # shown under each field, the form as it was sent
        (
            ("daily_time", lambda: schedule.daily_time(daily_time)),
            ("file_name", lambda: dropboxes.check_file_name(file_name)),
        ),
        (ScheduleError, dropboxes.DropboxError),
    )
    if errors:
        return await show_page(
            request, console, "The pickup settings are not saved: see the fields marked below.",
            status_code=400, pickup_errors=errors,
            pickup_form=form | {"process_on_upload": process_on_upload is not None},
        )  # fmt: skip
    async with writing(console.engine) as conn:
        await dropboxes.configure(
            conn, console.tenant.id, file_name=file_name, daily=daily_time,
            process_on_upload=process_on_upload is not None,
        )  # fmt: skip
    return back_to_section(console, "dropbox", "The pickup settings are saved.")


@router.post(f"{HERE}/pickups/{{import_id}}/approve", response_class=HTMLResponse)
async def approve_pickup(request: Request, console: Writing, import_id: UUID) -> Response:
    try:
        report = await pickups.approve(
            console.engine, _folders(console), console.tenant.slug, import_id,
            actor=console.actor, max_bytes=console.settings.max_import_bytes,
            max_problems=console.settings.max_reported_problems,
        )  # fmt: skip
    except pickups.PickupError as error:
        return await show_page(request, console, f"Held pickup: {error}.", status_code=400)
    if report.status != ImportStatus.APPLIED:
        return await show_page(
            request, console, f"Held pickup: not applied ({report.status}).", status_code=400
        )
    counts = ", ".join(f"{n} {what}" for what, n in report.counts.items() if n)
    return back_to_section(
        console, "pickups", f"The held pickup is applied: {counts or 'no changes'}."
    )


@router.post(f"{HERE}/pickups/{{import_id}}/discard", response_class=HTMLResponse)
async def discard_pickup(request: Request, console: Writing, import_id: UUID) -> Response:
    try:
        await pickups.discard(
            console.engine, _folders(console), console.tenant.slug, import_id,
            actor=console.actor,
        )  # fmt: skip
    except pickups.PickupError as error:
        return await show_page(request, console, f"Held pickup: {error}.", status_code=400)
    return back_to_section(console, "pickups", "The held pickup is discarded; nothing changed.")
