"""SCIM Users: every write is a Plan applied by the directory's one apply step (audit event with
channel "scim" and the token's name, sessions revoked when access ends)."""

from typing import Annotated, Any
from uuid import UUID

import sqlalchemy as sa
from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import BY_NAME, check_typed
from roster.domain.mapping import CORE, ENTERPRISE, from_scim, to_scim
from roster.domain.plan import Addition, Current, Mode, Plan, Removal, Update, diff, new_user
from roster.store import directory, scim_tokens
from roster.store.schema import users
from roster.web.scim import listing
from roster.web.scim.common import (
    Engine,
    Token,
    actor,
    check_identifier,
    check_version,
    read_json,
    rewriting,
    scim_write,
)
from roster.web.scim.errors import ScimError, scim_json
from roster.web.scim.patch import apply_patch
from roster.web.scim.storage import resolve_user

router = APIRouter(prefix="/Users")
REQUIRED = ("username", "first_name", "surname", "display_name", "email")
Mapping = dict[str, str | None]


def _location(request: Request, user_id: UUID) -> str:
    return str(request.url_for("get_user", user_id=str(user_id)))


def _validated(body: Any, mapping: Mapping, *, replacing: bool) -> dict[str, Any]:
    """Directory values from a SCIM User body, checked by the template's rules."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    values = from_scim(body, mapping)
    checked: dict[str, Any] = {}
    for name, value in values.items():
        field = BY_NAME.get(name)
        if field is None:
            checked[name] = _state(name, value)
            continue
        stored, problem = check_typed(field, value)
        if problem:
            raise ScimError(400, f"{mapping[name]} {problem.message}", "invalidValue")
        checked[name] = stored
    missing = [mapping[n] or n for n in REQUIRED if checked.get(n) is None]
    if missing and (replacing or "username" not in checked):
        raise ScimError(400, f"{', '.join(missing)} is required", "invalidValue")
    return checked


def _state(name: str, value: Any) -> Any:
    if name == "active" and not isinstance(value, bool):
        raise ScimError(400, "active must be true or false", "invalidValue")
    if name == "external_id" and value is not None:
        check_identifier("externalId", value)
    if name == "extra":
        for attribute, kept in value.items():
            inner = kept.get("value") if isinstance(kept, dict) else kept
            if inner is not None:
                check_identifier(f"{ENTERPRISE}:{attribute}", inner)
    return value


async def _row(conn: AsyncConnection, tenant_id: UUID, user_id: UUID) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            sa.select(users).where(
                users.c.tenant_id == tenant_id, users.c.id == user_id, users.c.removed_at.is_(None)
            )
        )
    ).first()
    return dict(row._mapping) if row else None


async def _present(
    conn: AsyncConnection, tenant_id: UUID, user_id: str, *, for_update: bool = False
) -> Current:
    try:
        wanted = UUID(user_id)
    except ValueError:
        raise ScimError(404, f"no user {user_id}") from None
    found = await directory.load_current(conn, tenant_id, [wanted], for_update=for_update)
    if not found or found[0].removed:
        raise ScimError(404, f"no user {user_id}")
    return found[0]


async def _conflicts(
    conn: AsyncConnection, tenant_id: UUID, values: dict[str, Any], itself: UUID | None
) -> Current | None:
    clash, returning = await directory.conflicts(conn, tenant_id, values, itself)
    if clash is not None:
        what = "userName" if clash == "username" else "emails"
        raise ScimError(409, f"{what}: another user already has this value", "uniqueness")
    return returning


async def _write(
    conn: AsyncConnection, tenant_id: UUID, plan: Plan, token: scim_tokens.Token
) -> None:
    await directory.apply(conn, tenant_id, plan, channel="scim", actor=actor(token))


async def _replace(
    conn: AsyncConnection,
    token: scim_tokens.Token,
    user: Current,
    values: dict[str, Any],
    mapping: Mapping,
) -> None:
    """Make the user exactly `values`, a whole resource (PUT, and PATCH after patching):
    mapped fields, externalId and kept extension attributes not given are cleared; fields the
    mapping switches off are untouched, and so is `active` when not given."""
    await _conflicts(conn, token.tenant_id, values, user.id)
    mapped = [name for name, source in mapping.items() if source is not None]
    replacement = {name: values.get(name) for name in (*mapped, "external_id")}
    replacement["extra"] = values.get("extra") or {}
    if "active" in values:
        replacement["active"] = values["active"]
    changes = diff(user, replacement)
    if changes:
        plan = Plan(Mode.ADD, updated=[Update(None, user, changes)])
        await _write(conn, token.tenant_id, plan, token)


def _resource(
    request: Request, row: dict[str, Any], mapping: Mapping, status: int = 200
) -> JSONResponse:
    location = _location(request, row["id"])
    headers = {"ETag": f'W/"{row["version"]}"'}
    if status == 201:
        headers["Location"] = location
    resource = listing.project(listing.Params.of_query(request), to_scim(row, location, mapping))
    return scim_json(resource, status, headers)


@router.post("", status_code=201)
async def create_user(request: Request, token: Token, engine: Engine) -> JSONResponse:
    body = await read_json(request)
    async with scim_write(engine) as conn:
        mapping = token.mapping
        values = _validated(body, mapping, replacing=True)
        returning = await _conflicts(conn, token.tenant_id, values, None)
        addition = Addition(None, new_user(values), revive=returning, managed_by="scim")
        await _write(conn, token.tenant_id, Plan(Mode.ADD, added=[addition]), token)
        user_id = await directory.user_id_of(conn, token.tenant_id, values["username"])
        row = await _row(conn, token.tenant_id, user_id)
    assert row is not None
    return _resource(request, row, mapping, 201)


async def search(
    request: Request, conn: AsyncConnection, token: scim_tokens.Token, params: listing.Params
) -> tuple[int, list[dict[str, Any]]]:
    """Users matching a list request: how many in all, and one page of them as SCIM."""
    where = sa.and_(
        users.c.tenant_id == token.tenant_id,
        users.c.removed_at.is_(None),
        listing.condition(params, resolve_user),
    )
    rows = (
        await conn.execute(
            sa.select(users)
            .where(where)
            .order_by(users.c.created_at, users.c.id)
            .offset(params.offset)
            .limit(params.count)
        )
    ).all()
    total = await listing.total(conn, users, where, params, len(rows))
    return total, [
        listing.project(params, to_scim(dict(r._mapping), _location(request, r.id), token.mapping))
        for r in rows
    ]


@router.get("/{user_id}", name="get_user")
async def get_user(request: Request, user_id: str, token: Token, engine: Engine) -> JSONResponse:
    async with engine.connect() as conn:
        user = await _present(conn, token.tenant_id, user_id)
        row = await _row(conn, token.tenant_id, user.id)
        mapping = token.mapping
    assert row is not None
    return _resource(request, row, mapping)


@router.put("/{user_id}")
async def replace_user(
    request: Request,
    user_id: str,
    token: Token,
    engine: Engine,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    body = await read_json(request)

    async def work(conn: AsyncConnection) -> JSONResponse:
        user = await _present(conn, token.tenant_id, user_id, for_update=True)
        check_version(user, if_match)
        mapping = token.mapping
        await _replace(conn, token, user, _validated(body, mapping, replacing=True), mapping)
        return await _current_resource(request, conn, token, user.id, mapping)

    return await rewriting(engine, if_match, work)


@router.patch("/{user_id}")
async def patch_user(
    request: Request,
    user_id: str,
    token: Token,
    engine: Engine,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    body = await read_json(request)

    async def work(conn: AsyncConnection) -> JSONResponse:
        user = await _present(conn, token.tenant_id, user_id, for_update=True)
        check_version(user, if_match)
        row = await _row(conn, token.tenant_id, user.id)
        assert row is not None
        mapping = token.mapping
        patched = apply_patch(to_scim(row, _location(request, user.id), mapping), body, CORE)
        await _replace(conn, token, user, _validated(patched, mapping, replacing=True), mapping)
        return await _current_resource(request, conn, token, user.id, mapping)

    return await rewriting(engine, if_match, work)


async def _current_resource(
    request: Request, conn: AsyncConnection, token: Token, user_id: UUID, mapping: Mapping
) -> JSONResponse:
    row = await _row(conn, token.tenant_id, user_id)
    assert row is not None
    return _resource(request, row, mapping)


@router.delete("/{user_id}", status_code=204)
async def delete_user(
    user_id: str,
    token: Token,
    engine: Engine,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    async def work(conn: AsyncConnection) -> Response:
        user = await _present(conn, token.tenant_id, user_id, for_update=True)
        check_version(user, if_match)
        await _write(conn, token.tenant_id, Plan(Mode.REPLACE, removed=[Removal(user)]), token)
        return Response(status_code=204)

    return await rewriting(engine, if_match, work)


listing.add_list_routes(router, search)
