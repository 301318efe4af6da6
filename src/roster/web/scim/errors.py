"""SCIM error responses (RFC 7644 §3.12), for every failure of the SCIM API."""

from typing import Any

import orjson
from starlette.responses import Response

from roster.store.db import Clash

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
MEDIA_TYPE = "application/scim+json"


class ScimError(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type
        self.headers = headers or {}


# What a 409 says of a value the store found taken (store.db.Clash), by the field it names.
_TAKEN = {
    "username": "userName: another user already has this value",
    "email": "emails: another user already has this value",
    "display_name": "displayName: another group already has this name",
}


def taken(clash: Clash) -> ScimError:
    """A value another resource holds, as SCIM says it: 409 uniqueness, naming the attribute
    when the store knows which."""
    detail = _TAKEN.get(clash.field or "", "another resource already has this value")
    return ScimError(409, detail, "uniqueness")


def scim_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A SCIM body; orjson encodes one in a tenth of the standard library's time."""
    return Response(orjson.dumps(body), status, headers, MEDIA_TYPE)


def error_response(error: ScimError) -> Response:
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(error.status), "detail": error.detail}
    if error.scim_type:
        body["scimType"] = error.scim_type
    return scim_json(body, error.status, error.headers)
