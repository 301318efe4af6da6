"""Desired users vs the directory -> a Plan. Pure: no I/O.

Every channel describes what it wants (a whole list for a CSV or SFTP file; one user for SCIM and
the console); this module decides what changes. The store applies a Plan in one transaction.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from roster.domain.csvfile import CsvFile, Row
from roster.domain.fields import BY_NAME, FIELD_NAMES, key
from roster.domain.issues import Issue, excerpt
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
    reconciler = Reconciler(csv, mode, guard)
    reconciler.see(current)
    return reconciler.plan()


class Reconciler:
    """`reconcile` with the directory seen a part at a time (`see`, then `plan`): of the
    directory's users it keeps only those the plan changes or removes, and the admins, so a
    large organization's unchanged users are never all held at once."""

    def __init__(self, csv: CsvFile, mode: Mode, guard: Guard = Guard()) -> None:
        self._csv, self._mode, self._guard = csv, mode, guard
        # Every row by the username it names (invalid ones too: they keep their user from
        # being removed) and valid ones by address, made when the first users are seen (a
        # first import sees none); a row is taken out once its user is seen, so the rows
        # left are new.
        self._by_username: dict[str, Row] | None = None
        self._by_email: dict[str, Row] = {}
        self._present = 0
        self._admins: list[Current] = []
        self._unmatched: list[Current] = []  # present users no row names: removed on a replace
        self._revived: list[tuple[Row, Current]] = []
        self._updated: list[Update] = []
        self._unchanged: list[int] = []  # row numbers
        self._scim_rows: list[tuple[Row, Current]] = []  # rows naming a SCIM-managed user
        self._email_taken: list[tuple[Row, Current]] = []  # rows giving another's address

    def see(self, users: Iterable[Current]) -> None:
        """Take in some of the directory's users (each user once)."""
        if not self._csv.readable:
            return
        replacing = self._mode is Mode.REPLACE
        for user in users:
            if self._by_username is None:
                rows = self._csv.rows
                self._by_username = {r.username_key: r for r in rows if r.username_key}
                self._by_email = {r.email_key: r for r in rows if r.valid and r.email_key}
            if not user.removed:
                self._present += 1
                if user.values["role"] == "admin":
                    self._admins.append(user)
                # An address never silently moves to another identity (PRODUCT.md), not even
                # in a swap: a row giving a present user's address must name that user.
                claimant = self._by_email.get(user.email_key)
                if claimant is not None and claimant.username_key != user.username_key:
                    self._email_taken.append((claimant, user))
            row = self._by_username.pop(user.username_key, None)
            if row is None:
                if replacing and not user.removed and user.managed_by != "scim":
                    self._unmatched.append(user)
            elif not row.valid:
                continue
            elif user.removed:
                self._revived.append((row, user))
            elif user.managed_by == "scim":
                self._scim_rows.append((row, user))
            elif changes := diff(user, row.values):
                self._updated.append(Update(row.row, user, changes))
            else:
                self._unchanged.append(row.row)

    def plan(self) -> Plan:
        """The plan, once every user has been seen."""
        plan = Plan(issues=list(self._csv.issues))
        if not self._csv.readable:
            return plan
        refused = self._refused(plan)
        unseen = self._by_username
        new = [
            Addition(r.row, r.values)
            for r in self._csv.rows
            if r.valid
            and (unseen is None or (r.row not in refused and unseen.get(r.username_key or "") is r))
        ]
        revived = [  # a returning user keeps the stored username, and regains access
            Addition(row.row, _returning(user, row), revive=user)
            for row, user in self._revived
            if row.row not in refused
        ]
        plan.added = sorted(new + revived, key=_by_row) if revived else new
        plan.updated = sorted((u for u in self._updated if u.row not in refused), key=_by_row)
        plan.unchanged = sum(row not in refused for row in self._unchanged)
        plan.invalid = sum(not r.valid for r in self._csv.rows) + len(refused)
        plan.removed = [Removal(u) for u in self._removals(refused, plan)]
        if plan.removed:
            plan.held = self._guard.hold_reason(len(plan.removed), self._present)
        plan.issues.sort(key=lambda i: (i.row or 0, i.severity))
        return plan

    def _refused(self, plan: Plan) -> set[int]:
        """Valid rows that name a user managed by SCIM, or give another user's address: an
        error each (reported in `plan`); their row numbers."""
        refused: set[int] = set()
        for row, user in sorted(self._scim_rows, key=lambda pair: pair[0].row):
            refused.add(row.row)
            message = (
                f"{user.label} is managed by SCIM (the identity provider); change this user there"
            )
            plan.issues.append(
                Issue(
                    row.row,
                    BY_NAME["username"].column,
                    "managed_by_scim",
                    message,
                    value=excerpt(str(row.values["username"])),
                )
            )
        email = BY_NAME["email"].column
        for row, owner in sorted(self._email_taken, key=lambda pair: pair[0].row):
            if row.row in refused:
                continue
            refused.add(row.row)
            message = f"{email} {row.values['email']} belongs to another user ({owner.label})"
            plan.issues.append(
                Issue(
                    row.row,
                    email,
                    "email_taken",
                    message,
                    value=excerpt(str(row.values["email"])),
                )
            )
        return refused

    def _removals(self, refused: set[int], plan: Plan) -> list[Current]:
        """Present users no row names, but for those an invalid row may stand for (by its
        address; by username they are named) and the organization's last admin."""
        if self._mode is not Mode.REPLACE:
            return []
        invalid = [r for r in self._csv.rows if not r.valid or r.row in refused]
        if any(r.username_key is None and r.email_key is None for r in invalid):
            _warn_once(
                plan,
                Issue(
                    None,
                    None,
                    "removals_skipped",
                    "some invalid rows cannot be tied to a user (no readable username or "
                    "e-mail address), so nobody is removed: their users cannot be told apart "
                    "from users left out of the file",
                    "warning",
                ),
            )
            return []
        if not self._unmatched:
            return []
        protected = {r.email_key for r in invalid if r.email_key}
        removing = [u for u in self._unmatched if u.email_key not in protected]
        removed_ids = {u.id for u in removing}
        if self._admins and all(a.id in removed_ids for a in self._admins):
            keep = min(self._admins, key=lambda a: a.created_at)
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


def _returning(user: Current, row: Row) -> dict[str, Any]:
    return {**user.values, **row.values, "username": user.values["username"], "active": True}


def _by_row(change: Addition | Update) -> int:
    return change.row or 0


def _warn_once(plan: Plan, issue: Issue) -> None:
    if issue not in plan.issues:
        plan.issues.append(issue)
