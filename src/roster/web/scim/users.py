"""SCIM Users: every write is a Plan the store writes (`one_user.create` for a create,
`directory.apply` for the rest): audit event with channel "scim" and the token's name, sessions
revoked when access ends."""

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from roster.domain.fields import key
from roster.domain.mapping import CORE, to_scim
from roster.domain.plan import (
    Addition,
    Current,
    Plan,
    Removal,
    Update,
    diff,
    new_user,
)
from roster.store import admins, directory, directory_reads, one_user, scim_search, scim_tokens
from roster.store.db import Unavailable
from roster.store.prepared import Connection
from roster.web.scim import filter as scim_filter
from roster.web.scim import listing
from roster.web.scim.common import (
    actor,
    check_version,
    direct_reads,
    direct_writes,
    location,
    read_json,
    read_patch,
    reader_of,
    rewriting,
    route,
    token_of,
)
from roster.web.scim.errors import ScimError, scim_json
from roster.web.scim.note import Note, changed, note_of
from roster.web.scim.patch import patched
from roster.web.scim.user_values import validated

log = logging.getLogger("roster.scim")
Mapping = dict[str, str | None]


def _location(request: Request, user_id: UUID) -> str:
    return location(request, "Users", user_id)


async def _present(
    conn: Connection, tenant_id: UUID, user_id: str
) -> tuple[Current, dict[str, Any]]:
    """A present user, locked until the transaction ends so a write never races another: as
    the plan sees them, and their row (what the resource is rendered from)."""
    try:
        wanted = UUID(user_id)
    except ValueError:
        raise ScimError(404, f"no user {user_id}") from None
    row = await one_user.locked(conn, tenant_id, wanted)
    if row is None:
        raise ScimError(404, f"no user {user_id}")
    return directory_reads.current_of(row), row


def _concerned(note: Note, row: dict[str, Any], outcome: str) -> None:
    """The log names the user and what happened to them."""
    note.resource_id, note.name, note.outcome = str(row["id"]), row["username"], outcome


async def _write(
    conn: Connection, tenant_id: UUID, plan: Plan, token: scim_tokens.Token
) -> list[dict[str, Any]]:
    """Apply the plan; the rows of the users it added or changed, as now stored."""
    return await directory.apply(
        conn, tenant_id, plan, channel="scim", actor=actor(token), returning=True
    )


async def _replace(
    conn: Connection,
    token: scim_tokens.Token,
    user: Current,
    row: dict[str, Any],
    values: dict[str, Any],
    mapping: Mapping,
    note: Note,
) -> dict[str, Any]:
    """Make the user exactly `values`, a whole resource (PUT, and PATCH after patching):
    mapped fields, externalId and kept extension attributes not given are cleared; fields the
    mapping switches off are untouched, and so is `active` when not given. The user's row
    afterwards (`row`, the one read before, when nothing changed)."""
    renamed = key(values.get("username") or "") != user.username_key
    if renamed or key(values.get("email") or "") != user.email_key:
        # Unchanged ones are this user's own: unique indexes keep every other user off them.
        await one_user.check_unique(conn, token.tenant_id, values, user.id)
    mapped = [name for name, source in mapping.items() if source is not None]
    replacement = {name: values.get(name) for name in (*mapped, "external_id")}
    replacement["extra"] = values.get("extra") or {}
    if "active" in values:
        replacement["active"] = values["active"]
    changes = diff(user, replacement)
    note.outcome = changed(changes)
    if not changes:
        return row
    plan = Plan(updated=[Update(None, user, changes)])
    (written,) = await _write(conn, token.tenant_id, plan, token)
    return written


# What a write to one user did: the response, the user before it, and the values written
# (None: removed).
Written = tuple[Response, Current, dict[str, Any] | None]


async def _rewrite(
    request: Request,
    token: scim_tokens.Token,
    if_match: str | None,
    work: Callable[[Connection], Awaitable[Written]],
) -> Response:
    """PUT, PATCH or DELETE of a user (see common.rewriting). The identity provider is obeyed
    even for the last admin (a leaver loses access); once the write is committed, the audit log
    warns when the organization has no admin left. Checked after the commit, so two admins
    deactivated at once cannot each count the other as remaining."""
    writes = direct_writes(request)
    response, user, values = await rewriting(writes, if_match, work)
    if admins.ends_admin(user, values):
        try:
            async with one_user.transaction(writes) as conn:
                await admins.warn_if_none_left(
                    conn, token.tenant_id, user, values, channel="scim", actor=actor(token)
                )
        except Unavailable as error:  # the write stands: answer it, and say what was missed
            log.error(
                "organization %s: %s's write is committed, but whether an admin is left could "
                "not be checked (%s); check with `roster users list`",
                token.tenant_id, user.label, error,
            )  # fmt: skip
    return response


def _resource(
    request: Request, row: dict[str, Any], mapping: Mapping, status: int = 200
) -> Response:
    location = _location(request, row["id"])
    headers = {"ETag": f'W/"{row["version"]}"'}
    if status == 201:
        headers["Location"] = location
    resource = listing.project(listing.Params.of_query(request), to_scim(row, location, mapping))
    return scim_json(resource, status, headers)


async def create_user(request: Request) -> Response:
    token = await token_of(request)
    body = await read_json(request)
    note = note_of(request)
    if isinstance(body, dict) and isinstance(body.get("userName"), str):
        note.name = body["userName"]  # named even when refused
    values = validated(body, token.mapping, note.warnings)
    addition = Addition(None, new_user(values), managed_by="scim")
    created = await one_user.create(
        direct_writes(request), token.tenant_id, addition, channel="scim", actor=actor(token)
    )
    _concerned(note, created.row, "restored (a returning user)" if created.restored else "created")
    return _resource(request, created.row, token.mapping, 201)


# The filter identity providers send before each write, in its plain form (no escapes, no
# control characters): read without the parser, which costs a tenth of the lookup.
_PLAIN_USERNAME_EQ = re.compile(r' *username +eq +"([^"\\\x00-\x1f\x7f-\x9f]*)" *', re.IGNORECASE)


def _sought_username(params: listing.Params) -> str | None:
    """The username a first page filtered by just `userName eq "…"` asks for, else None."""
    text = params.filter
    if not text or params.offset or not params.count or text.lstrip()[:8].lower() != "username":
        return None
    plain = _PLAIN_USERNAME_EQ.fullmatch(text)
    if plain:
        return plain.group(1)
    try:
        node = scim_filter.parse(text)
        if not isinstance(node, scim_filter.Compare) or not scim_search.names_username(node.path):
            return None
    except scim_filter.FilterError:
        return None  # the general path answers it
    return node.value if node.op == "eq" and isinstance(node.value, str) else None


async def search(
    request: Request, token: scim_tokens.Token, params: listing.Params
) -> tuple[int, list[dict[str, Any]]]:
    """Users matching a list request: how many in all, and one page of them as SCIM."""
    username = _sought_username(params)
    if username is not None:  # one user at most (usernames are unique): the page tells all
        found = await one_user.by_username(direct_reads(request), token.tenant_id, username)
        rows = [found] if found else []
        total = len(rows)
        note_of(request).name = username
        if found:
            note_of(request).resource_id = str(found["id"])
    else:
        node = listing.filter_of(params)
        with listing.filter_refusals():
            total, rows = await scim_search.users_page(
                reader_of(request), token.tenant_id, node, params.offset, params.count
            )
    return total, [
        listing.project(params, to_scim(row, _location(request, row["id"]), token.mapping))
        for row in rows
    ]


async def _read(request: Request, token: scim_tokens.Token, user_id: str) -> dict[str, Any]:
    """A present user's row, read outside any transaction."""
    try:
        wanted = UUID(user_id)
    except ValueError:
        raise ScimError(404, f"no user {user_id}") from None
    row = await one_user.by_id(direct_reads(request), token.tenant_id, wanted)
    if row is None:
        raise ScimError(404, f"no user {user_id}")
    return row


async def get_user(request: Request) -> Response:
    token = await token_of(request)
    row = await _read(request, token, request.path_params["user_id"])
    _concerned(note_of(request), row, "found")
    return _resource(request, row, token.mapping)


async def replace_user(request: Request) -> Response:
    token, user_id, if_match = await _target(request)
    note = note_of(request)
    body = await read_json(request)

    async def work(conn: Connection) -> Written:
        user, row = await _present(conn, token.tenant_id, user_id)
        _concerned(note, row, "unchanged")
        check_version(user, if_match)
        mapping = token.mapping
        warnings: list[str] = []  # this attempt's: rewriting may run work more than once
        values = validated(body, mapping, warnings, user.values)
        note.warnings[:] = warnings
        # externalId is the provider's own link to the user, and Okta's PUT leaves it out:
        # not given, it is kept (null clears it).
        values.setdefault("external_id", user.values.get("external_id"))
        written = await _replace(conn, token, user, row, values, mapping, note)
        return _resource(request, written, mapping), user, values

    return await _rewrite(request, token, if_match, work)


async def patch_user(request: Request) -> Response:
    token, user_id, if_match = await _target(request)
    note = note_of(request)
    body = await read_patch(request)
    mapping = token.mapping

    async def patched_values(row: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The user's values once patched, and the warnings of what was left out."""
        warnings: list[str] = []
        current = directory_reads.current_of(row).values
        resource = to_scim(row, _location(request, row["id"]), mapping)
        values = await patched(
            resource, body, CORE, lambda after: validated(after, mapping, warnings, current)
        )
        return values, warnings

    # Applied to the user as read before the write's transaction, so that a long PATCH holds no
    # lock (on SQLite, every writer of the process waits for the one in its turn).
    early = await _read(request, token, user_id)
    check_version(directory_reads.current_of(early), if_match)
    early_values = await patched_values(early)

    async def work(conn: Connection) -> Written:
        user, row = await _present(conn, token.tenant_id, user_id)
        _concerned(note, row, "unchanged")
        check_version(user, if_match)
        same = row["version"] == early["version"]  # else applied again, to the user as now
        values, warnings = early_values if same else await patched_values(row)
        note.warnings[:] = warnings  # this attempt's: rewriting may run work more than once
        written = await _replace(conn, token, user, row, values, mapping, note)
        return _resource(request, written, mapping), user, values

    return await _rewrite(request, token, if_match, work)


async def delete_user(request: Request) -> Response:
    token, user_id, if_match = await _target(request)
    note = note_of(request)

    async def work(conn: Connection) -> Written:
        user, row = await _present(conn, token.tenant_id, user_id)
        _concerned(note, row, "deleted")
        check_version(user, if_match)
        await _write(conn, token.tenant_id, Plan(removed=[Removal(user)]), token)
        return Response(status_code=204), user, None

    return await _rewrite(request, token, if_match, work)


async def _target(request: Request) -> tuple[scim_tokens.Token, str, str | None]:
    """A write to one user: the caller's token, the user's id, the If-Match header."""
    token = await token_of(request)
    user_id = note_of(request).resource_id = request.path_params["user_id"]
    return token, user_id, request.headers.get("if-match")


routes = [
    route("/Users", GET=listing.lister(search), POST=create_user),
    route("/Users/.search", POST=listing.searcher(search)),
    route("/Users/{user_id}", GET=get_user, PUT=replace_user, PATCH=patch_user, DELETE=delete_user),
]
