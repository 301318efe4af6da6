"""What one SCIM request did, in the product's words, for the provisioning log: the handlers
fill it in as they go, and it is read once the answer is sent."""

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.types import Scope


@dataclass
class Note:
    resource_id: str | None = None  # the user's or group's id
    name: str | None = None  # the user's userName or the group's displayName
    outcome: str | None = None  # "created", "updated title, department", "refused: …"
    warnings: list[str] = field(default_factory=list)  # what was left out, and why
    tenant_id: UUID | None = None  # the organization of the request's token, once verified
    organization: str | None = None  # that organization's slug
    token: str | None = None  # that token's name
    status: int = 0  # the answer's, once sent


def note_of(request: Request) -> Note:
    """This request's note, made on first use."""
    return note_in(request.scope)


def note_in(scope: Scope) -> Note:
    """The note of the request with this scope, made on first use."""
    state = scope.setdefault("state", {})
    note: Note | None = state.get("scim_note")
    if note is None:
        note = state["scim_note"] = Note()
    return note


def changed(changes: dict[str, Any]) -> str:
    """A user's changes (field -> (before, after), as a plan holds them) in words:
    "deactivated", "updated title, department", "reactivated; updated surname"."""
    said = []
    if "active" in changes:
        said.append("reactivated" if changes["active"][1] else "deactivated")
    fields = [_label(name) for name in changes if name != "active"]
    if fields:
        said.append("updated " + ", ".join(fields))
    return "; ".join(said) or "unchanged"


_OTHER = {"external_id": "externalId", "extra": "extension attributes"}


def _label(name: str) -> str:
    """A directory field as the log names it: "title", "first name", "externalId"."""
    return _OTHER.get(name) or name.replace("_", " ")
