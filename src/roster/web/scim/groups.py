"""SCIM Groups: a name and members, who must be present users of the same organization."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from roster.domain.fields import KEY_WIDTH, key_problem
from roster.domain.mapping import GROUP
from roster.store import groups as store
from roster.store import scim_search, scim_tokens
from roster.web.scim import listing
from roster.web.scim.common import (
    actor,
    check_identifier,
    check_version,
    engine_of,
    location,
    read_json,
    read_patch,
    reader_of,
    route,
    token_of,
)
from roster.web.scim.errors import ScimError, scim_json
from roster.web.scim.note import note_of
from roster.web.scim.patch import patched

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


def _location(request: Request, group_id: UUID) -> str:
    return location(request, "Groups", group_id)


def to_scim(request: Request, group: store.Group) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [GROUP],
        "id": str(group.id),
        "displayName": group.display_name,
        "members": [
            {
                "value": str(user_id),
                "type": "User",
                "$ref": location(request, "Users", user_id),
            }
            for user_id, _ in group.members
        ],
        "meta": {
            "resourceType": "Group",
            "created": group.created_at.isoformat(),
            "lastModified": group.updated_at.isoformat(),
            "location": _location(request, group.id),
            "version": f'W/"{group.version}"',
        },
    }
    if group.external_id:
        resource["externalId"] = group.external_id
    return resource


def _response(request: Request, group: store.Group, status: int = 200) -> Response:
    headers = {"ETag": f'W/"{group.version}"'}
    if status == 201:
        headers["Location"] = _location(request, group.id)
    resource = listing.project(listing.Params.of_query(request), to_scim(request, group))
    return scim_json(resource, status, headers)


def _read(body: Any) -> tuple[str, str | None, set[UUID]]:
    """displayName, externalId and member ids from a SCIM Group body."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    fields = {k.lower(): v for k, v in body.items()}
    name = fields.get("displayname")
    name = check_identifier("displayName", name.strip() if isinstance(name, str) else name, 256)
    too_wide = key_problem(name, KEY_WIDTH["group"])
    if too_wide:
        raise ScimError(400, f"displayName {too_wide.message}", "invalidValue")
    external_id = fields.get("externalid")
    if external_id is not None:
        check_identifier("externalId", external_id)
    members = fields.get("members") or []
    if not isinstance(members, list):
        raise ScimError(400, "members must be a list", "invalidValue")
    ids: set[UUID] = set()
    for member in members:
        value = member.get("value") if isinstance(member, dict) else None
        try:
            ids.add(UUID(str(value)))
        except ValueError:
            raise ScimError(400, f"members: {value!r} is not a user id", "invalidValue") from None
    return name, external_id, ids


def _names_external_id(body: Any) -> bool:
    return isinstance(body, dict) and any(k.lower() == "externalid" for k in body)


async def _group(
    conn: AsyncConnection, tenant_id: UUID, group_id: str, *, for_update: bool = False
) -> store.Group:
    try:
        found = await store.find(conn, tenant_id, UUID(group_id), for_update=for_update)
    except ValueError:
        found = None
    if found is None:
        raise ScimError(404, f"no group {group_id}")
    return found


def _refused(error: store.GroupError) -> ScimError:
    return ScimError(400, str(error), error.code)


async def create_group(request: Request) -> Response:
    token = await token_of(request)
    name, external_id, members = _read(await read_json(request))
    note = note_of(request)
    note.name = name
    async with store.transaction(engine_of(request)) as conn:
        try:
            group_id = await store.create(
                conn, token.tenant_id, actor(token), name, external_id, members
            )
        except store.GroupError as error:
            raise _refused(error) from None
        group = await _group(conn, token.tenant_id, str(group_id))
    note.resource_id, note.outcome = str(group.id), f"created with {_members(len(members))}"
    return _response(request, group, 201)


def _members(count: int) -> str:
    return f"{count} member{'' if count == 1 else 's'}"


def _changes(group: store.Group, name: str, external_id: str | None, members: set[UUID]) -> str:
    """What a group's replacement changes, in words: "renamed; added 2 members"."""
    before = {user_id for user_id, _ in group.members}
    said = []
    if name != group.display_name:
        said.append(f"renamed from {group.display_name}")
    if external_id != group.external_id:
        said.append("updated externalId")
    if added := len(members - before):
        said.append(f"added {_members(added)}")
    if removed := len(before - members):
        said.append(f"removed {_members(removed)}")
    return "; ".join(said) or "unchanged"


async def search(
    request: Request, token: scim_tokens.Token, params: listing.Params
) -> tuple[int, list[dict[str, Any]]]:
    """Groups matching a list request: how many in all, and one page of them as SCIM."""
    node = listing.filter_of(params)
    with listing.filter_refusals():
        total, found = await scim_search.groups_page(
            reader_of(request), token.tenant_id, node, params.offset, params.count
        )
    return total, [listing.project(params, to_scim(request, g)) for g in found]


async def get_group(request: Request) -> Response:
    token = await token_of(request)
    async with reader_of(request).connect() as conn:
        group = await _group(conn, token.tenant_id, request.path_params["group_id"])
    note = note_of(request)
    note.resource_id, note.name, note.outcome = str(group.id), group.display_name, "found"
    return _response(request, group)


async def _change(
    request: Request,
    token: scim_tokens.Token,
    patch_body: Any = None,
    replacement: Any = None,
) -> Response:
    group_id, if_match = request.path_params["group_id"], request.headers.get("if-match")
    note = note_of(request)
    note.resource_id = group_id
    body, early = replacement, None
    if patch_body is not None:  # applied before the write's transaction (see users.patch_user)
        async with reader_of(request).connect() as conn:
            early = await _group(conn, token.tenant_id, group_id)
        check_version(early, if_match)
        body = await patched(to_scim(request, early), patch_body, GROUP)
    async with store.transaction(engine_of(request)) as conn:
        group = await _group(conn, token.tenant_id, group_id, for_update=True)
        note.name = group.display_name
        check_version(group, if_match)
        if early is not None and group.version != early.version:  # changed meanwhile: again
            body = await patched(to_scim(request, group), patch_body, GROUP)
        name, external_id, members = _read(body)
        if patch_body is None and not _names_external_id(body):
            external_id = group.external_id  # as for users: a PUT that leaves it out keeps it
        note.name, note.outcome = name, _changes(group, name, external_id, members)
        try:
            await store.replace(
                conn, token.tenant_id, actor(token), group, name, external_id, members
            )
        except store.GroupError as error:
            raise _refused(error) from None
        group = await _group(conn, token.tenant_id, group_id)
    return _response(request, group)


async def replace_group(request: Request) -> Response:
    token = await token_of(request)
    return await _change(request, token, replacement=await read_json(request))


async def patch_group(request: Request) -> Response:
    token = await token_of(request)
    return await _change(request, token, patch_body=await read_patch(request))


async def delete_group(request: Request) -> Response:
    token = await token_of(request)
    group_id, if_match = request.path_params["group_id"], request.headers.get("if-match")
    note = note_of(request)
    note.resource_id = group_id
    async with store.transaction(engine_of(request)) as conn:
        group = await _group(conn, token.tenant_id, group_id, for_update=True)
        note.name, note.outcome = group.display_name, "deleted"
        check_version(group, if_match)
        await store.delete(conn, token.tenant_id, actor(token), group)
    return Response(status_code=204)


routes = [
    route("/Groups", GET=listing.lister(search), POST=create_group),
    route("/Groups/.search", POST=listing.searcher(search)),
    route(
        "/Groups/{group_id}",
        GET=get_group,
        PUT=replace_group,
        PATCH=patch_group,
        DELETE=delete_group,
    ),
]
