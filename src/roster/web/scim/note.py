"""What one SCIM request did, in the product's words, for the provisioning log: the handlers
fill it in as they go, and it is read once the answer is sent."""

from dataclasses import dataclass, field

from starlette.requests import Request


@dataclass
class Note:
    resource_id: str | None = None  # the user's or group's id
    name: str | None = None  # the user's userName or the group's displayName
    outcome: str | None = None  # "created", "updated title, department", "refused: …"
    warnings: list[str] = field(default_factory=list)  # what was left out, and why


def note_of(request: Request) -> Note:
    """This request's note, made on first use."""
    note = getattr(request.state, "scim_note", None)
    if note is None:
        note = request.state.scim_note = Note()
    return note
