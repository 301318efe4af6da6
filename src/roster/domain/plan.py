"""Desired users vs the directory -> a Plan. Pure: no I/O.

Every channel describes what it wants (a whole list for a CSV or SFTP file; one user for SCIM and
the console); this module decides what changes. The store applies a Plan in one transaction.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from roster.domain.csvfile import CsvFile, Row
from roster.domain.fields import BY_NAME, FIELD_NAMES, key
from roster.domain.issues import Issue
from roster.domain.mode import Mode

# What a write may change on a user: the template's fields and the account's state.
WRITABLE: tuple[str, ...] = (*FIELD_NAMES, "active", "role", "external_id", "extra")
# A change to any of these ends the user's sessions: they are who signs in, and whether they may.
ACCESS_ATTRIBUTES = frozenset({"username", "email", "active"})


@dataclass(slots=True)
class Current:
    """A user as the directory holds it (removed ones too, while retained)."""

    id: UUID
    values: dict[str, Any]  # every WRITABLE attribute
    managed_by: str
    version: int
    created_at: datetime
    removed: bool = False
    username_key: str = field(init=False)
    email_key: str = field(init=False)

    def __post_init__(self) -> None:
        self.username_key = key(self.values["username"])
        self.email_key = key(self.values["email"])

    @property
    def label(self) -> str:
        return str(self.values["username"])


@dataclass(slots=True)
class Addition:
    row: int | None
    # The attributes given (a file's columns: its row's own view, not a copy); `values` adds
    # a new user's defaults for the rest when the user is written.
    given: Mapping[str, Any]
    revive: Current | None = None  # a retained removed user who returns with the same username
    managed_by: str | None = None  # None: the channel that applies the plan

    @property
    def values(self) -> dict[str, Any]:
        """Every WRITABLE attribute (a new dict each time)."""
        return new_user(self.given)


@dataclass(slots=True)
class Update:
    row: int | None
    user: Current
    changes: dict[str, tuple[Any, Any]]  # attribute -> (before, after)

    @property
    def values(self) -> dict[str, Any]:
        return {**self.user.values, **{name: new for name, (_, new) in self.changes.items()}}

    @property
    def ends_access(self) -> bool:
        return bool(ACCESS_ATTRIBUTES & self.changes.keys())


@dataclass(slots=True)
class Removal:
    user: Current


@dataclass(frozen=True, slots=True)
class Guard:
    """A replace removing more than `percent` % of the users and more than `min_users` is held."""

    percent: int = 10
    min_users: int = 5

    def hold_reason(self, removing: int, present: int) -> str | None:
        if removing > self.min_users and removing * 100 > self.percent * present:
            share = removing * 100 / present if present else 100.0
            return (
                f"the import would remove {removing} of {present} users ({share:.0f} %), more "
                f"than the organization's limit of {self.percent} % and {self.min_users} users"
            )
        return None


@dataclass(slots=True, repr=False)
class Plan:
    """The changes one write makes: a file's reconcile (in either mode), or one user's change
    from the console or an identity provider."""

    added: list[Addition] = field(default_factory=list)
    updated: list[Update] = field(default_factory=list)
    removed: list[Removal] = field(default_factory=list)
    unchanged: int = 0
    invalid: int = 0
    issues: list[Issue] = field(default_factory=list)
    held: str | None = None  # why the deletion guard holds it

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
            "invalid": self.invalid,
        }

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.updated) + len(self.removed)

    def __repr__(self) -> str:
        # Its counts, not its users: a repr of a large plan takes seconds and its size again,
        # and Python 3.11's asyncio.run has `signal.getsignal` repr its task (and the task's
        # result, an import's report) when it ends.
        return f"Plan({self.counts}, issues={len(self.issues)}, held={self.held!r})"


def new_user(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every WRITABLE attribute of a user that does not exist yet."""
    return {
        **dict.fromkeys(FIELD_NAMES),
        "active": True,
        "role": "user",
        "external_id": None,
        "extra": {},
        **values,
    }


def diff(user: Current, values: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """What `values` would change. Usernames and e-mails differing only in case are no change:
    the stored spelling stays."""
    changes = {}
    for name, new in values.items():
        old = user.values.get(name)
        if old == new:
            continue
        if name in ("username", "email") and key(str(old)) == key(str(new)):
            continue
        changes[name] = (old, new)
    return changes


def reconcile(csv: CsvFile, current: Iterable[Current], mode: Mode, guard: Guard = Guard()) -> Plan:
    """The plan that makes the directory look like the file (add: never removes)."""
    plan = Plan(issues=list(csv.issues))
    if not csv.readable:
        return plan
    users = list(current)
    by_username = {u.username_key: u for u in users}
    email_owner = {u.email_key: u for u in users if not u.removed}

    valid: list[tuple[Row, Current | None]] = []
    invalid_rows = [r for r in csv.rows if not r.valid]
    for row in csv.rows:
        if not row.valid:
            continue
        target = by_username.get(row.username_key or "")
        if target is not None and not target.removed and target.managed_by == "scim":
            plan.issues.append(
                Issue(
                    row.row,
                    BY_NAME["username"].column,
                    "managed_by_scim",
                    f"{target.label} is managed by SCIM (the identity provider); "
                    "change this user there",
                )
            )
            invalid_rows.append(row)
            continue
        valid.append((row, target))

    # A row whose e-mail address belongs to another existing user is an error on that row
    # (PRODUCT.md): an address never silently moves to another identity, not even in a swap.
    refused: set[int] = set()  # row numbers
    for row, target in valid:
        owner = email_owner.get(row.email_key or "")
        if owner is not None and owner is not target:
            refused.add(row.row)
            plan.issues.append(
                Issue(
                    row.row,
                    BY_NAME["email"].column,
                    "email_taken",
                    f"{BY_NAME['email'].column} {row.values['email']} belongs to another user "
                    f"({owner.label})",
                )
            )
            invalid_rows.append(row)
    valid = [pair for pair in valid if pair[0].row not in refused]
    protected = _protected(invalid_rows, by_username, email_owner)
    removals = (
        _removals(users, valid, protected, invalid_rows, plan) if mode is Mode.REPLACE else []
    )

    for row, target in valid:
        if target is None:
            plan.added.append(Addition(row.row, row.values))
        elif target.removed:
            username = target.values["username"]
            values = {**target.values, **row.values, "username": username, "active": True}
            plan.added.append(Addition(row.row, values, revive=target))
        elif changes := diff(target, row.values):
            plan.updated.append(Update(row.row, target, changes))
        else:
            plan.unchanged += 1
    plan.removed = [Removal(u) for u in removals]
    plan.invalid = len({r.row for r in invalid_rows})
    if plan.removed:
        plan.held = guard.hold_reason(len(plan.removed), sum(not u.removed for u in users))
    plan.issues.sort(key=lambda i: (i.row or 0, i.severity))
    return plan


def _protected(
    invalid_rows: Sequence[Row], by_username: dict[str, Current], email_owner: dict[str, Current]
) -> set[UUID]:
    """Users an invalid row may stand for: matched by username or by e-mail."""
    protected = set()
    for row in invalid_rows:
        for user in (by_username.get(row.username_key or ""), email_owner.get(row.email_key or "")):
            if user is not None:
                protected.add(user.id)
    return protected


def _removals(
    users: list[Current],
    valid: list[tuple[Row, Current | None]],
    protected: set[UUID],
    invalid_rows: list[Row],
    plan: Plan,
) -> list[Current]:
    if any(r.username_key is None and r.email_key is None for r in invalid_rows):
        _warn_once(
            plan,
            Issue(
                None,
                None,
                "removals_skipped",
                "some invalid rows cannot be tied to a user (no readable username or e-mail "
                "address), so nobody is removed: their users cannot be told apart from users "
                "left out of the file",
                "warning",
            ),
        )
        return []
    named = {target.id for _, target in valid if target is not None} | protected
    removing = [u for u in users if not u.removed and u.id not in named and u.managed_by != "scim"]
    admins = [u for u in users if not u.removed and u.values["role"] == "admin"]
    removed_ids = {u.id for u in removing}
    if admins and all(a.id in removed_ids for a in admins):
        keep = min(admins, key=lambda a: a.created_at)
        removing = [u for u in removing if u is not keep]
        _warn_once(
            plan,
            Issue(
                None,
                None,
                "last_admin_kept",
                f"{keep.label} is not in the file but stays: the organization's last admin",
                "warning",
            ),
        )
    return removing


def _warn_once(plan: Plan, issue: Issue) -> None:
    if issue not in plan.issues:
        plan.issues.append(issue)
