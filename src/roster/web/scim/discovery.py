"""Discovery (RFC 7644 §4): what this service provider supports, truthfully — the schemas list
only the attributes Roster stores."""

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from roster.domain.mapping import CORE, ENTERPRISE, GROUP, ROSTER
from roster.web.scim.common import base_url, route
from roster.web.scim.errors import ScimError, scim_json

MAX_RESULTS = 200
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def attr(
    name: str,
    kind: str = "string",
    *,
    multi: bool = False,
    required: bool = False,
    case_exact: bool = False,
    mutability: str = "readWrite",
    uniqueness: str = "none",
    canonical: list[str] | None = None,
    sub: list[dict[str, Any]] | None = None,
    references: list[str] | None = None,
    description: str = "",
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": description or name,
        "required": required,
        "mutability": mutability,
        "returned": "default",
    }
    if kind in ("string", "reference"):
        found |= {"caseExact": case_exact, "uniqueness": uniqueness}
    if canonical:
        found["canonicalValues"] = canonical
    if sub:
        found["subAttributes"] = sub
    if references:
        found["referenceTypes"] = references
    return found


def _typed_values(
    canonical: list[str], value_kind: str = "string", required: bool = False
) -> list[dict[str, Any]]:
    references = ["external"] if value_kind == "reference" else None
    return [
        attr("value", value_kind, required=required, references=references),
        attr("type", canonical=canonical),
    ]


USER_ATTRIBUTES = [
    attr(
        "userName", required=True, uniqueness="server", description="Unique within the organization"
    ),
    attr(
        "name",
        "complex",
        required=True,
        sub=[
            attr("givenName", required=True),
            attr("familyName", required=True),
        ],
    ),
    attr("displayName", required=True, description="At most 20 characters"),
    attr("title"),
    attr("active", "boolean", required=True, description="Whether the user may sign in"),
    attr(
        "emails", "complex", multi=True, required=True, sub=_typed_values(["work"], required=True)
    ),
    attr("phoneNumbers", "complex", multi=True, sub=_typed_values(["work", "mobile"])),
    attr("photos", "complex", multi=True, sub=_typed_values(["photo"], "reference")),
]
ENTERPRISE_ATTRIBUTES = [
    attr("department"),
    attr("employeeNumber"),
    attr(
        "manager",
        "complex",
        sub=[
            attr("value"),
            attr("$ref", "reference", references=["User"]),
            attr("displayName", mutability="readOnly"),
        ],
    ),
]
ROSTER_ATTRIBUTES = [
    attr("firstAider", "boolean", description="First aider (EHBO)"),
    attr("emergencyResponder", "boolean", description="Emergency response officer (BHV)"),
]
GROUP_ATTRIBUTES = [
    attr("displayName", required=True, uniqueness="server"),
    attr(
        "members",
        "complex",
        multi=True,
        sub=[
            attr("value", mutability="immutable"),
            attr("$ref", "reference", mutability="immutable", references=["User"]),
            attr("type", mutability="immutable", canonical=["User"]),
        ],
    ),
]
SCHEMAS = {
    CORE: ("User", "User Account", USER_ATTRIBUTES),
    ENTERPRISE: ("EnterpriseUser", "Enterprise User", ENTERPRISE_ATTRIBUTES),
    ROSTER: ("RosterUser", "Roster's workplace roles", ROSTER_ATTRIBUTES),
    GROUP: ("Group", "Group", GROUP_ATTRIBUTES),
}


def _schema(request: Request, urn: str) -> dict[str, Any]:
    name, description, attributes = SCHEMAS[urn]
    return {
        "schemas": [SCHEMA],
        "id": urn,
        "name": name,
        "description": description,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": f"{base_url(request)}/Schemas/{urn}"},
    }


def _resource_type(request: Request, name: str) -> dict[str, Any]:
    user = name == "User"
    found: dict[str, Any] = {
        "schemas": [RESOURCE_TYPE],
        "id": name,
        "name": name,
        "endpoint": "/Users" if user else "/Groups",
        "description": "People of the organization" if user else "Groups of people",
        "schema": CORE if user else GROUP,
        "meta": {
            "resourceType": "ResourceType",
            "location": f"{base_url(request)}/ResourceTypes/{name}",
        },
    }
    if user:
        found["schemaExtensions"] = [
            {"schema": ENTERPRISE, "required": False},
            {"schema": ROSTER, "required": False},
        ]
    return found


def _listed(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


async def service_provider_config(request: Request) -> Response:
    return scim_json(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": True},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "Bearer token",
                    "description": "A token from `roster scim token create`",
                    "primary": True,
                }
            ],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": f"{base_url(request)}/ServiceProviderConfig",
            },
        }
    )


async def resource_types(request: Request) -> Response:
    return scim_json(_listed([_resource_type(request, n) for n in ("User", "Group")]))


async def resource_type(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ("User", "Group"):
        raise ScimError(404, f"no resource type {name}")
    return scim_json(_resource_type(request, name))


async def schemas(request: Request) -> Response:
    return scim_json(_listed([_schema(request, urn) for urn in SCHEMAS]))


async def schema(request: Request) -> Response:
    urn = request.path_params["urn"]
    if urn not in SCHEMAS:
        raise ScimError(404, f"no schema {urn}")
    return scim_json(_schema(request, urn))


routes = [
    route("/ServiceProviderConfig", GET=service_provider_config),
    route("/ResourceTypes", GET=resource_types),
    route("/ResourceTypes/{name}", GET=resource_type),
    route("/Schemas", GET=schemas),
    route("/Schemas/{urn}", GET=schema),
]
