"""One person at a time, for the console's forms and the CLI: validated by the template's field
rules and written as a one-user plan through the same apply step as files (audit events,
session revocation)."""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from roster.domain.fields import FIELDS, check
from roster.domain.issues import Issue
from roster.domain.plan import Addition, Current, Plan, Removal, Update, diff, new_user
from roster.store import admins, directory, directory_reads
from roster.store.db import lock_tenant, writing

TAKEN = {
    "username": "Another user has this username.",
    "email": "Another user has this e-mail address.",
}
CHANGED = "This user was changed after the form was opened."
LAST_ADMIN = (
    "This is the organization's last admin: make another user an admin first, so that someone "
    "can still sign in to the Control Centre."
)


@dataclass
class Outcome:
    user_id: UUID | None
    issues: list[Issue] = field(default_factory=list)  # column: the field's name

    @property
    def ok(self) -> bool:
        return not self.issues


class NoSuchUser(Exception):
    pass


def validate(raw: Mapping[str, str | None]) -> tuple[dict[str, Any], list[Issue]]:
    """Every template field of a form, checked as a CSV row would be."""
    values: dict[str, Any] = {}
    issues = []
    for spec in FIELDS:
        value, problem = check(spec, raw.get(spec.name))
        if problem is None:
            values[spec.name] = value
        else:
            issues.append(Issue(None, spec.name, problem.code, f"{spec.label} {problem.message}"))
    return values, issues


async def add(
    engine: AsyncEngine,
    tenant_id: UUID,
    raw: Mapping[str, str | None],
    *,
    channel: str,
    actor: str,
    role: str = "user",
) -> Outcome:
    values, issues = validate(raw)
    if issues:
        return Outcome(None, issues)
    async with writing(engine) as conn:
        await lock_tenant(conn, tenant_id)
        clash, returning = await directory_reads.conflicts(conn, tenant_id, values, None)
        if clash is not None:
            return Outcome(None, [Issue(None, clash, "taken", TAKEN[clash])])
        addition = Addition(None, new_user(values | {"role": role}), revive=returning)
        await directory.apply(conn, tenant_id, Plan(added=[addition]), channel=channel, actor=actor)
        return Outcome(await directory_reads.user_id_of(conn, tenant_id, values["username"]))


async def _locked(conn: Any, tenant_id: UUID, user_id: UUID) -> Current:
    found = await directory_reads.load_current(conn, tenant_id, [user_id], for_update=True)
    if not found or found[0].removed:
        raise NoSuchUser(f"there is no user {user_id}")
    return found[0]


async def change(
    engine: AsyncEngine,
    tenant_id: UUID,
    user_id: UUID,
    values: Mapping[str, Any],
    *,
    channel: str,
    actor: str,
    version: int | None = None,
) -> Outcome:
    """Set some attributes of a user (already validated values: fields, active, role). With
    `version` (the one a form showed), a user changed since then is left as they are and the
    outcome is the issue "changed": a form opened earlier never puts old values back."""
    try:
        async with writing(engine) as conn:
            await lock_tenant(conn, tenant_id)
            user = await _locked(conn, tenant_id, user_id)
            return await _change(
                conn, tenant_id, user, values, channel=channel, actor=actor, version=version
            )
    except directory.ConcurrentChange:
        return Outcome(user_id, [Issue(None, None, "changed", CHANGED)])


async def _keeps_an_admin(conn: Any, tenant_id: UUID, user: Current, values: Any) -> bool:
    """The organization keeps an admin who can sign in (checked under the organization's lock,
    so two admins demoting each other at once cannot both succeed)."""
    return not admins.ends_admin(user, values) or await admins.others(conn, tenant_id, user.id) > 0


async def _change(
    conn: Any,
    tenant_id: UUID,
    user: Current,
    values: Mapping[str, Any],
    *,
    channel: str,
    actor: str,
    version: int | None = None,
) -> Outcome:
    """Write a change to a user read (and locked) in this transaction."""
    user_id = user.id
    if not await _keeps_an_admin(conn, tenant_id, user, values):
        return Outcome(user_id, [Issue(None, "role", "last_admin", LAST_ADMIN)])
    if "username" in values or "email" in values:
        clash, _ = await directory_reads.conflicts(
            conn, tenant_id, user.values | dict(values), user_id
        )
        if clash is not None:
            return Outcome(user_id, [Issue(None, clash, "taken", TAKEN[clash])])
    changes = diff(user, dict(values))
    if changes:
        # The plan is made from the version the caller saw: apply's version guard refuses it
        # (ConcurrentChange) when the stored user is newer.
        seen = user if version is None else replace(user, version=version)
        plan = Plan(updated=[Update(None, seen, changes)])
        await directory.apply(conn, tenant_id, plan, channel=channel, actor=actor)
    return Outcome(user_id)


def _role_refused(user: Current, role: str) -> Issue | None:
    """Why a role form cannot act on the user as stored now (read under the organization's
    lock): a form shown before another admin acted never replaces the password they handed over."""
    name, values = user.label, user.values
    if values["role"] == role:
        why = "is already an admin" if role == "admin" else "is not an admin"
        return Issue(None, "role", "changed", f"{name} {why}.")
    if role == "admin" and not values["active"]:
        return Issue(None, "active", "inactive", f"{name} is inactive: reactivate them first.")
    return None


async def set_role(
    engine: AsyncEngine,
    tenant_id: UUID,
    user_id: UUID,
    password_hash: str | None,
    *,
    channel: str,
    actor: str,
) -> Outcome:
    """Make a user an admin with console credentials (a password hash), or, with None, take the
    rights and the credentials away: the role and the credentials change together or not at all."""
    role = "admin" if password_hash else "user"
    async with writing(engine) as conn:
        await lock_tenant(conn, tenant_id)
        user = await _locked(conn, tenant_id, user_id)
        refused = _role_refused(user, role)
        if refused is not None:
            return Outcome(user_id, [refused])
        outcome = await _change(conn, tenant_id, user, {"role": role}, channel=channel, actor=actor)
        if outcome.ok and password_hash:
            await admins.set_password(conn, tenant_id, user_id, password_hash)
        elif outcome.ok:
            await admins.forget(conn, tenant_id, user_id)
        return outcome


async def remove(
    engine: AsyncEngine, tenant_id: UUID, user_id: UUID, *, channel: str, actor: str
) -> Outcome:
    async with writing(engine) as conn:
        await lock_tenant(conn, tenant_id)
        user = await _locked(conn, tenant_id, user_id)
        if not await _keeps_an_admin(conn, tenant_id, user, None):
            return Outcome(user_id, [Issue(None, "role", "last_admin", LAST_ADMIN)])
        plan = Plan(removed=[Removal(user)])
        await directory.apply(conn, tenant_id, plan, channel=channel, actor=actor)
        return Outcome(user_id)
