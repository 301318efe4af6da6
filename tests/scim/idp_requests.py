"""The request sequences Microsoft Entra ID and Okta document, as data.

Each step is one request as the provider's page shows it (method, path, body) and what of the
answer the provider relies on: the status, and values at paths in the answer. `{name}` in a path
or a body string is an id an earlier step kept (`keep`), as the provider sends back the id it was
given. Sources:

- ENTRA_TUTORIAL: "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra
  ID", sections "User Operations", "Group Operations" and "Handling provisioning and
  deprovisioning of users" (learn.microsoft.com, entra/identity/app-provisioning/
  use-scim-to-provision-users-and-groups).
- ENTRA_KNOWN_ISSUES: "Known issues and resolutions with SCIM 2.0 protocol compliance of the
  Microsoft Entra user provisioning service", section "Flags to alter the SCIM behavior": each
  request without and with the `aadOptscim062020` flag.
- OKTA_REFERENCE: "SCIM 2.0 protocol reference" (developer.okta.com/docs/api/openapi/okta-scim/
  guides/scim-20).
- OKTA_SPEC_TEST: the requests of "Okta SCIM 2.0 SPEC Test" (Okta-SCIM-20-SPEC-Test.json, run in
  Runscope/BlazeMeter), with its initial variables filled in.
"""

from dataclasses import dataclass, field
from typing import Any

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PRESENT = object()  # the answer has a value at this path, whatever it is

Path = str | tuple[str | int, ...]  # "name.givenName", or a tuple where a key holds dots


@dataclass(frozen=True)
class Step:
    name: str  # the heading the document gives the request
    method: str
    path: str
    body: Any = None
    status: int | tuple[int, ...] = 200
    expect: dict[Path, Any] = field(default_factory=dict)
    absent: tuple[Path, ...] = ()  # paths the answer must not have
    keep: dict[str, Path] = field(default_factory=dict)  # name -> path of a value in the answer
    headers: dict[str, str] = field(default_factory=dict)


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


# --- Microsoft Entra ID: the tutorial ------------------------------------------------------

ENTRA_USER_NAME = "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
ENTRA_EMAIL = "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
ENTRA_CREATE = {
    "schemas": [CORE, ENTERPRISE],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": ENTRA_USER_NAME,
    "active": True,
    "emails": [{"primary": True, "type": "work", "value": ENTRA_EMAIL}],
    "meta": {"resourceType": "User"},
    "name": {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "givenName",
    },
    "roles": [],
}

# "Example 2. Provision a user" (its extension URN misspelt as printed).
ENTRA_PROVISION = {
    "schemas": [CORE, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
    "externalId": "jyoung",
    "userName": "jyoung@testuser.com",
    "active": True,
    "addresses": None,
    "displayName": "Joy Young",
    "emails": [{"type": "work", "value": "jyoung@Contoso.com", "primary": True}],
    "meta": {"resourceType": "User"},
    "name": {"familyName": "Young", "givenName": "Joy"},
    "phoneNumbers": None,
    "preferredLanguage": None,
    "title": None,
    "department": None,
    "manager": None,
}

ENTRA_TUTORIAL_USERS = [
    Step(
        # "Test Connection queries the SCIM endpoint for a user that doesn't exist, using a
        # random GUID as the matching property": 200 with an empty ListResponse.
        "Test Connection",
        "GET",
        '/Users?filter=userName eq "9f1c5a2e-6b7d-4e0f-8a3b-2c4d5e6f7a8b"',
        expect={"schemas": [LIST], "totalResults": 0, "Resources": []},
    ),
    Step(
        "Create User",
        "POST",
        "/Users",
        ENTRA_CREATE,
        201,
        {
            "schemas": PRESENT,
            "id": PRESENT,
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": ENTRA_USER_NAME,
            "name.givenName": "givenName",
            "name.familyName": "familyName",
            "displayName": "givenName familyName",  # no displayName sent: name.formatted
            "active": True,
            "emails.0.value": ENTRA_EMAIL,
            "emails.0.type": "work",
            "meta.resourceType": "User",
            "meta.created": PRESENT,
            "meta.lastModified": PRESENT,
        },
        keep={"user": "id"},
    ),
    Step(
        "Get User",
        "GET",
        "/Users/{user}",
        expect={
            "id": "{user}",
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": ENTRA_USER_NAME,
            "active": True,
            "emails.0.value": ENTRA_EMAIL,
            "meta.resourceType": "User",
        },
    ),
    Step(
        "Get User (User not found)",
        "GET",
        "/Users/5171a35d82074e068ce2",
        status=404,
        expect={"schemas": [ERROR], "status": "404"},
    ),
    Step(
        "Get User by query",
        "GET",
        f'/Users?filter=userName eq "{ENTRA_USER_NAME}"',
        expect={
            "schemas": [LIST],
            "totalResults": 1,
            "startIndex": 1,
            "Resources.0.id": "{user}",
            "Resources.0.userName": ENTRA_USER_NAME,
            "Resources.0.externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        },
    ),
    Step(
        "Get User by query - Zero results",
        "GET",
        '/Users?filter=userName eq "non-existent user"',
        expect={"schemas": [LIST], "totalResults": 0, "Resources": [], "startIndex": 1},
    ),
    Step(
        "Update User [Multi-valued properties]",
        "PATCH",
        "/Users/{user}",
        patch(
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "updatedEmail@microsoft.com",
            },
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        ),
        expect={
            "id": "{user}",
            "emails.0.value": "updatedEmail@microsoft.com",
            "emails.0.type": "work",
            "name.familyName": "updatedFamilyName",
            "name.givenName": "givenName",
            "userName": ENTRA_USER_NAME,
        },
    ),
    Step(
        "Update User [Single-valued properties]",
        "PATCH",
        "/Users/{user}",
        patch(
            {
                "op": "Replace",
                "path": "userName",
                "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com",
            }
        ),
        expect={
            "id": "{user}",
            "userName": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com",
            "emails.0.value": "updatedEmail@microsoft.com",
            "active": True,
        },
    ),
    Step(
        "Disable User",
        "PATCH",
        "/Users/{user}",
        {"Operations": [{"op": "Replace", "path": "active", "value": False}], "schemas": [PATCH]},
        expect={"id": "{user}", "active": False, "emails.0.value": "updatedEmail@microsoft.com"},
    ),
    Step(
        # A soft-deleted user is still returned (the tutorial's requirements table).
        "Get User (disabled)",
        "GET",
        '/Users?filter=userName eq "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"',
        expect={"totalResults": 1, "Resources.0.active": False},
    ),
    Step("Delete User", "DELETE", "/Users/{user}", status=204),
    Step("Get User (deleted)", "GET", "/Users/{user}", status=404),
]

# Groups are created with an empty members list; members are users an earlier step kept.
ENTRA_TUTORIAL_GROUPS = [
    Step(
        "Provision a user (a member to be)",
        "POST",
        "/Users",
        ENTRA_PROVISION,
        201,
        keep={"member": "id"},
    ),
    Step(
        "Create Group",
        "POST",
        "/Groups",
        {
            "schemas": [
                GROUP,
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
            ],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"},
        },
        201,
        {
            "schemas": [GROUP],
            "id": PRESENT,
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "members": [],
            "meta.resourceType": "Group",
            "meta.created": PRESENT,
        },
        keep={"group": "id"},
    ),
    Step(
        "Get Group",
        "GET",
        "/Groups/{group}?excludedAttributes=members",
        expect={
            "id": "{group}",
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta.resourceType": "Group",
        },
        absent=("members",),
    ),
    Step(
        "Get Group by displayName",
        "GET",
        '/Groups?excludedAttributes=members&filter=displayName eq "displayName"',
        expect={
            "schemas": [LIST],
            "totalResults": 1,
            "startIndex": 1,
            "Resources.0.id": "{group}",
            "Resources.0.displayName": "displayName",
        },
        absent=("Resources.0.members",),
    ),
    Step(
        # The tutorial asks for 204 and says a body with every member is not advisable;
        # RFC 7644 §3.5.2 lets the answer be 200 with the resource, which Entra accepts too.
        "Update Group [Non-member attributes]",
        "PATCH",
        "/Groups/{group}",
        patch(
            {
                "op": "Replace",
                "path": "displayName",
                "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName",
            }
        ),
        status=(200, 204),
    ),
    Step(
        "Update Group [Add Members]",
        "PATCH",
        "/Groups/{group}",
        patch({"op": "Add", "path": "members", "value": [{"$ref": None, "value": "{member}"}]}),
        status=(200, 204),
    ),
    Step(
        "Get Group (after the add)",
        "GET",
        "/Groups/{group}",
        expect={
            "displayName": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName",
            "members.0.value": "{member}",
        },
    ),
    Step(
        "Update Group [Remove Members]",
        "PATCH",
        "/Groups/{group}",
        patch({"op": "Remove", "path": "members", "value": [{"$ref": None, "value": "{member}"}]}),
        status=(200, 204),
    ),
    Step("Get Group (after the removal)", "GET", "/Groups/{group}", expect={"members": []}),
    Step("Delete Group", "DELETE", "/Groups/{group}", status=204),
    Step("Get Group (deleted)", "GET", "/Groups/{group}", status=404),
]

# "Handling provisioning and deprovisioning of users", examples 1 to 6. Example 1's filter is
# printed unquoted (`externalId eq jyoung`); RFC 7644 requires a JSON string there and Entra
# quotes it on the wire, so it is replayed quoted. Example 4 is described by its parts (id eq,
# manager eq, only id returned): it is replayed as that filter.
ENTRA_TUTORIAL_EXAMPLES = [
    Step(
        "Example 1. Query the service for a matching user",
        "GET",
        '/Users?filter=externalId eq "jyoung"',
        expect={"totalResults": 0, "Resources": []},
    ),
    Step(
        "Example 2. Provision a user",
        "POST",
        "/Users",
        ENTRA_PROVISION,
        201,
        {
            "userName": "jyoung@testuser.com",
            "externalId": "jyoung",
            "displayName": "Joy Young",
            "emails.0.value": "jyoung@Contoso.com",
        },
        absent=("title", "phoneNumbers"),
        keep={"user": "id"},
    ),
    Step(
        "Example 1 again: the user is found by externalId",
        "GET",
        '/Users?filter=externalId eq "jyoung"',
        expect={"totalResults": 1, "Resources.0.id": "{user}"},
    ),
    Step(
        "Example 3. Query the current state of a user",
        "GET",
        "/Users/{user}",
        expect={"id": "{user}", "userName": "jyoung@testuser.com"},
    ),
    Step(
        "Example 4. Query the value of a reference attribute to be updated (not yet set)",
        "GET",
        '/Users?filter=id eq "{user}" and manager eq "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"'
        "&attributes=id",
        expect={"totalResults": 0, "Resources": []},
    ),
    Step(
        # The manager at its target in the tutorial's default mapping table.
        "Update User [manager]",
        "PATCH",
        "/Users/{user}",
        patch(
            {
                "op": "Add",
                "path": f"{ENTERPRISE}:manager",
                "value": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
            }
        ),
        expect={(ENTERPRISE, "manager"): "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"},
    ),
    Step(
        "Example 4. Query the value of a reference attribute to be updated",
        "GET",
        '/Users?filter=id eq "{user}" and manager eq "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"'
        "&attributes=id",
        expect={"totalResults": 1, "Resources.0.id": "{user}"},
        absent=("Resources.0.userName",),
    ),
    Step(
        # Roster keeps no core `manager`: the operation is accepted and changes nothing.
        "Example 5. Request from Microsoft Entra ID to an SCIM endpoint to update a user",
        "PATCH",
        "/Users/{user}",
        patch(
            {
                "op": "Add",
                "path": "manager",
                "value": [
                    {
                        "$ref": "http://.../scim/Users/00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
                        "value": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
                    }
                ],
            }
        ),
        expect={"id": "{user}", "displayName": "Joy Young", "meta.version": 'W/"2"'},
        absent=("manager",),
    ),
    Step("Example 6. Deprovision a user", "DELETE", "/Users/{user}", status=204),
]

# The attributes of the tutorial's default user mapping table, as single-attribute PATCH paths
# (Entra sends each mapped attribute at its target path). Roster keeps the work and mobile
# phone, the work e-mail and the department; the rest is accepted and ignored.
ENTRA_DEFAULT_MAPPING_PATHS = [
    Step("Create User", "POST", "/Users", ENTRA_CREATE, 201, keep={"user": "id"}),
    Step(
        "Update User [every target path of the default mapping]",
        "PATCH",
        "/Users/{user}",
        patch(
            {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Facilities"},
            {"op": "Add", "path": "displayName", "value": "Anne de Vries"},
            {"op": "Add", "path": f"{ENTERPRISE}:employeeNumber", "value": "701984"},
            {"op": "Add", "path": 'phoneNumbers[type eq "fax"].value', "value": "+31 20 000 0000"},
            {"op": "Add", "path": "name.givenName", "value": "Anne"},
            {"op": "Add", "path": "title", "value": "Workplace Coordinator"},
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "anne@contoso.com"},
            {"op": "Add", "path": "externalId", "value": "anne"},
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "jyoung"},
            {
                "op": "Add",
                "path": 'phoneNumbers[type eq "mobile"].value',
                "value": "+31 6 1234 5678",
            },
            {"op": "Add", "path": 'addresses[type eq "work"].postalCode', "value": "1011 AB"},
            {"op": "Add", "path": 'emails[type eq "other"].Value', "value": "smtp:anne@contoso.nl"},
            {"op": "Add", "path": 'addresses[type eq "other"].Formatted', "value": "Room 4.12"},
            {"op": "Add", "path": 'addresses[type eq "work"].streetAddress', "value": "Dam 1"},
            {"op": "Add", "path": "name.familyName", "value": "de Vries"},
            {"op": "Add", "path": 'phoneNumbers[type eq "work"].value', "value": "+31 20 123 4567"},
        ),
        expect={
            "displayName": "Anne de Vries",
            "name.givenName": "Anne",
            "name.familyName": "de Vries",
            "title": "Workplace Coordinator",
            "externalId": "anne",
            "emails": [{"value": "anne@contoso.com", "type": "work"}],
            (ENTERPRISE, "department"): "Facilities",
            (ENTERPRISE, "employeeNumber"): "701984",
            (ENTERPRISE, "manager"): "jyoung",
        },
        absent=("addresses",),
    ),
    Step(
        "Get User by query (work e-mail, a uniqueness attribute)",
        "GET",
        '/Users?filter=emails[type eq "work"].value eq "anne@contoso.com"',
        expect={"totalResults": 1, "Resources.0.id": "{user}"},
    ),
]


# --- Microsoft Entra ID: the known-issues page, without and with aadOptscim062020 -----------


def entra_known_issues(flag: bool) -> list[Step]:
    """Every sample request of the page's "Flags to alter the SCIM behavior", as sent without
    the `aadOptscim062020` flag (False) or with it (True), on a user the tutorial provisioned
    and a group holding them."""
    if flag:
        disable = patch({"op": "replace", "path": "active", "value": False})
        add_string = {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "nickName", "value": "Babs"}],
        }
        replace_many = patch(
            {
                "op": "replace",
                "path": 'emails[type eq "work"].value',
                "value": "TestMhvaes@test.microsoft.com",
            },
            {
                "op": "replace",
                "value": {
                    "displayName": "Bjfe",
                    "name.givenName": "Kkom",
                    "name.familyName": "Unua",
                    f"{ENTERPRISE}:employeeNumber": "Aklq",
                },
            },
        )
        replaced = {
            "displayName": "Bjfe",
            "emails.0.value": "TestMhvaes@test.microsoft.com",
            "name.givenName": "Kkom",
            "name.familyName": "Unua",
            "externalId": "jyoung",
            (ENTERPRISE, "employeeNumber"): "Aklq",
        }
        remove_member = patch({"op": "remove", "path": 'members[value eq "{member}"]'})
    else:
        disable = patch({"op": "Replace", "path": "active", "value": "False"})
        add_string = patch({"op": "Add", "path": "nickName", "value": "Babs"})
        replace_many = patch(
            {"op": "Replace", "path": "displayName", "value": "Pvlo"},
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "TestBcwqnm@test.microsoft.com",
            },
            {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
            {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
            {"op": "Replace", "path": "externalId", "value": "Eqpj"},
            {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "Eqpj"},
        )
        replaced = {
            "displayName": "Pvlo",
            "emails.0.value": "TestBcwqnm@test.microsoft.com",
            "name.givenName": "Gtfd",
            "name.familyName": "Pkqf",
            "externalId": "Eqpj",
            (ENTERPRISE, "employeeNumber"): "Eqpj",
        }
        remove_member = patch({"op": "Remove", "path": "members", "value": [{"value": "{member}"}]})
    return [
        Step(
            "Provision a user (tutorial)",
            "POST",
            "/Users",
            ENTRA_PROVISION,
            201,
            keep={"member": "id"},
        ),
        Step(
            "Create Group (tutorial) holding the user",
            "POST",
            "/Groups",
            {
                "schemas": [GROUP],
                "displayName": "Known issues",
                "members": [{"value": "{member}"}],
            },
            201,
            {"members.0.value": "{member}"},
            keep={"group": "id"},
        ),
        # nickName is not a Roster attribute: accepted and ignored, the user unchanged.
        Step(
            "Requests made to add a single-value string attribute",
            "PATCH",
            "/Users/{member}",
            add_string,
            expect={"id": "{member}", "meta.version": 'W/"1"'},
            absent=("nickName",),
        ),
        Step(
            "Requests to replace multiple attributes",
            "PATCH",
            "/Users/{member}",
            replace_many,
            expect={"id": "{member}", **replaced},
        ),
        Step(
            "Requests made to disable users",
            "PATCH",
            "/Users/{member}",
            disable,
            expect={"id": "{member}", "active": False},
        ),
        Step("Get User (disabled)", "GET", "/Users/{member}", expect={"active": False}),
        Step(
            "Requests made to remove a group member",
            "PATCH",
            "/Groups/{group}",
            remove_member,
            status=(200, 204),
        ),
        Step("Get Group (member removed)", "GET", "/Groups/{group}", expect={"members": []}),
    ]


# --- Okta: the SCIM 2.0 protocol reference ---------------------------------------------------

OKTA_USER_NAME = "test.user@okta.local"
OKTA_CREATE = {
    "schemas": [CORE],
    "userName": OKTA_USER_NAME,
    "name": {"givenName": "Test", "familyName": "User"},
    "emails": [{"primary": True, "value": OKTA_USER_NAME, "type": "work"}],
    "displayName": "Test User",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": True,
}
# The reference's membership request moves a second user ("89bb1940-…") in and out.
OKTA_SECOND = {
    **OKTA_CREATE,
    "userName": "another.user@okta.local",
    "emails": [{"primary": True, "value": "another.user@okta.local", "type": "work"}],
    "displayName": "Another User",
    "externalId": "00ujl29u0le5T6Aj10h8",
}

OKTA_REFERENCE = [
    Step(
        "Determine if the User already exists",
        "GET",
        f'/Users?filter=userName eq "{OKTA_USER_NAME}"&startIndex=1&count=100',
        expect={
            "schemas": [LIST],
            "totalResults": 0,
            "startIndex": 1,
            "itemsPerPage": 0,
            "Resources": [],
        },
    ),
    Step(
        "Create the User (with Okta's placeholder password)",
        "POST",
        "/Users",
        OKTA_CREATE,
        201,
        {
            "id": PRESENT,
            "userName": OKTA_USER_NAME,
            "name.givenName": "Test",
            "name.familyName": "User",
            "emails.0.value": OKTA_USER_NAME,
            "emails.0.type": "work",
            "displayName": "Test User",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "active": True,
            "meta.resourceType": "User",
        },
        absent=("password",),
        keep={"user": "id"},
    ),
    Step(
        "Create the User again (it already exists)",
        "POST",
        "/Users",
        OKTA_CREATE,
        409,
        {"schemas": [ERROR], "status": "409", "scimType": "uniqueness"},
    ),
    Step(
        "Determine if the User already exists (it does)",
        "GET",
        f'/Users?filter=userName eq "{OKTA_USER_NAME}"&startIndex=1&count=100',
        expect={"totalResults": 1, "itemsPerPage": 1, "Resources.0.id": "{user}"},
        absent=("Resources.0.password",),
    ),
    Step(
        "Retrieve Users",
        "GET",
        "/Users?startIndex=1&count=100",
        expect={"schemas": [LIST], "totalResults": 1, "startIndex": 1, "itemsPerPage": 1},
    ),
    Step(
        "Retrieve a specific User",
        "GET",
        "/Users/{user}",
        expect={
            "id": "{user}",
            "userName": OKTA_USER_NAME,
            "active": True,
            "emails.0.value": OKTA_USER_NAME,
        },
        absent=("password",),
    ),
    Step(
        # Okta sends the whole user back with its changes and without displayName.
        "Update a specific User (PUT)",
        "PUT",
        "/Users/{user}",
        {
            "schemas": [CORE],
            "id": "{user}",
            "userName": OKTA_USER_NAME,
            "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
            "emails": [
                {
                    "primary": True,
                    "value": OKTA_USER_NAME,
                    "type": "work",
                    "display": OKTA_USER_NAME,
                }
            ],
            "active": True,
            "groups": [],
            "meta": {"resourceType": "User"},
        },
        expect={
            "id": "{user}",
            "userName": OKTA_USER_NAME,
            "name.givenName": "Another",
            "name.familyName": "User",
            "displayName": "Another User",  # none sent: given and family name
            "emails.0.value": OKTA_USER_NAME,
            "externalId": "00ujl29u0le5T6Aj10h7",  # none sent: Okta's link is kept
            "active": True,
        },
    ),
    Step(
        "Update a specific User (PATCH): deactivate",
        "PATCH",
        "/Users/{user}",
        patch({"op": "replace", "value": {"active": False}}),
        expect={"id": "{user}", "userName": OKTA_USER_NAME, "active": False},
    ),
    Step(
        "Update a specific User (PATCH): activate",
        "PATCH",
        "/Users/{user}",
        patch({"op": "replace", "value": {"active": True}}),
        expect={"id": "{user}", "active": True, "name.givenName": "Another"},
    ),
    Step("Create a second User", "POST", "/Users", OKTA_SECOND, 201, keep={"other": "id"}),
    Step(
        "Create Groups",
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []},
        201,
        {"schemas": [GROUP], "id": PRESENT, "displayName": "Test SCIMv2", "members": []},
        keep={"group": "id"},
    ),
    Step(
        "Retrieve Groups",
        "GET",
        "/Groups?startIndex=1&count=100",
        expect={"schemas": [LIST], "totalResults": 1, "startIndex": 1, "Resources.0.id": "{group}"},
    ),
    Step(
        "Retrieve specific Groups",
        "GET",
        "/Groups/{group}",
        expect={"id": "{group}", "displayName": "Test SCIMv2", "members": []},
    ),
    Step(
        "Update a specific Group name",
        "PATCH",
        "/Groups/{group}",
        patch({"op": "replace", "value": {"id": "{group}", "displayName": "Test SCIMv2"}}),
        status=(200, 204),
    ),
    Step(
        # The reference's answer shows the name "Test SCIMv20": a rename in the same form.
        "Update a specific Group name (to Test SCIMv20)",
        "PATCH",
        "/Groups/{group}",
        patch({"op": "replace", "value": {"id": "{group}", "displayName": "Test SCIMv20"}}),
        expect={"id": "{group}", "displayName": "Test SCIMv20"},
    ),
    Step(
        "Update specific Group membership",
        "PATCH",
        "/Groups/{group}",
        patch(
            {"op": "remove", "path": 'members[value eq "{other}"]'},
            {
                "op": "add",
                "path": "members",
                "value": [{"value": "{user}", "display": OKTA_USER_NAME}],
            },
        ),
        expect={"id": "{group}", "displayName": "Test SCIMv20", "members.0.value": "{user}"},
        absent=("members.1",),
    ),
    Step(
        "Update specific Group membership (full push with replace)",
        "PATCH",
        "/Groups/{group}",
        patch(
            {
                "op": "replace",
                "path": "members",
                "value": [
                    {"value": "{user}", "display": OKTA_USER_NAME},
                    {"value": "{other}", "display": OKTA_USER_NAME},
                ],
            }
        ),
        expect={"displayName": "Test SCIMv20", "members.1": PRESENT},
        absent=("members.2",),
    ),
    Step(
        "Update specific Group membership (remove the first)",
        "PATCH",
        "/Groups/{group}",
        patch({"op": "remove", "path": 'members[value eq "{user}"]'}),
        expect={"members.0.value": "{other}"},
        absent=("members.1",),
    ),
    Step(
        # App Integration Wizard integrations send renames and member changes as PUT of the
        # Group object, in the shape the reference's answers show.
        "Update a specific Group name and membership (PUT)",
        "PUT",
        "/Groups/{group}",
        {
            "schemas": [GROUP],
            "id": "{group}",
            "displayName": "Test SCIMv2",
            "members": [{"value": "{user}", "display": OKTA_USER_NAME}],
            "meta": {"resourceType": "Group"},
        },
        expect={"id": "{group}", "displayName": "Test SCIMv2", "members.0.value": "{user}"},
        absent=("members.1",),
    ),
    Step(
        # A deactivated member stays in the group (Okta deactivates, never deletes).
        "Update a specific User (PATCH): deactivate a member",
        "PATCH",
        "/Users/{user}",
        patch({"op": "replace", "value": {"active": False}}),
        expect={"active": False},
    ),
    Step(
        "Retrieve specific Groups (member kept)",
        "GET",
        "/Groups/{group}",
        expect={"members.0.value": "{user}"},
    ),
    Step("Delete a specific Group", "DELETE", "/Groups/{group}", status=204),
    Step("Retrieve specific Groups (deleted)", "GET", "/Groups/{group}", status=404),
]


# --- Okta: the SPEC test ---------------------------------------------------------------------

# The suite's initial script makes these random; here they are fixed.
OKTA_SPEC_HEADERS = {
    "Accept-Charset": "utf-8",
    "Content-Type": "application/scim+json; charset=utf-8",
    "Accept": "application/scim+json",
    "User-Agent": "OKTA SCIM Integration",
}
RANDOM_GIVEN = "Runscope300"
RANDOM_FAMILY = "Hfluaklab151"
RANDOM_USERNAME = "Runscope300Hfluaklab151@atko.com"
RANDOM_EMAIL = "Runscope300Hfluaklab151@example.com"


def _spec_create(email: str) -> dict[str, Any]:
    return {
        "schemas": [CORE],
        "userName": RANDOM_USERNAME,
        "name": {"givenName": RANDOM_GIVEN, "familyName": RANDOM_FAMILY},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"{RANDOM_GIVEN} {RANDOM_FAMILY}",
        "active": True,
    }


def _spec(step: Step) -> Step:
    return Step(**{**step.__dict__, "headers": {**OKTA_SPEC_HEADERS, **step.headers}})


# The suite needs one user to exist before it runs.
OKTA_SPEC_SEED = Step(
    "Seed: one existing user",
    "POST",
    "/Users",
    {
        "schemas": [CORE],
        "userName": "existing.user@example.com",
        "name": {"givenName": "Existing", "familyName": "User"},
        "emails": [{"primary": True, "value": "existing.user@example.com", "type": "work"}],
        "displayName": "Existing User",
        "active": True,
    },
    201,
)

OKTA_SPEC_TEST = [OKTA_SPEC_SEED] + [
    _spec(step)
    for step in [
        Step(
            "Required Test: Test Users endpoint",
            "GET",
            "/Users?count=1&startIndex=1",
            expect={
                "schemas": [LIST],
                "itemsPerPage": 1,
                "startIndex": 1,
                "totalResults": 1,
                "Resources.0.id": PRESENT,
                "Resources.0.name.familyName": PRESENT,
                "Resources.0.name.givenName": PRESENT,
                "Resources.0.userName": PRESENT,
                "Resources.0.active": True,
                "Resources.0.emails.0.value": PRESENT,
            },
            keep={"ISVUserid": "Resources.0.id"},
        ),
        Step(
            "Required Test: Get Users/{{id}} ",
            "GET",
            "/Users/{ISVUserid}",
            expect={
                "id": "{ISVUserid}",
                "name.familyName": PRESENT,
                "name.givenName": PRESENT,
                "userName": PRESENT,
                "active": True,
                "emails.0.value": PRESENT,
            },
        ),
        Step(
            "Required Test: Test invalid User by username",
            "GET",
            '/Users?filter=userName eq "abcdefgh@example.com"',
            expect={"schemas": [LIST], "totalResults": 0},
        ),
        Step(
            "Required Test: Test invalid User by ID",
            "GET",
            "/Users/010101001010101011001010101011",
            status=404,
            expect={"detail": PRESENT, "schemas": [ERROR]},
        ),
        Step(
            "Required Test: Make sure random user doesn't exist",
            "GET",
            f'/Users?filter=userName eq "{RANDOM_USERNAME}"',
            expect={"totalResults": 0, "schemas": [LIST]},
        ),
        Step(
            "Required Test: Create Okta user with realistic values",
            "POST",
            "/Users",
            _spec_create(RANDOM_EMAIL),
            201,
            {
                "active": True,
                "id": PRESENT,
                "name.familyName": RANDOM_FAMILY,
                "name.givenName": RANDOM_GIVEN,
                "userName": RANDOM_USERNAME,
                "emails.0.value": RANDOM_EMAIL,
            },
            keep={"idUserOne": "id"},
        ),
        Step(
            "Required Test: Verify that user was created",
            "GET",
            "/Users/{idUserOne}",
            expect={
                "userName": RANDOM_USERNAME,
                "name.familyName": RANDOM_FAMILY,
                "name.givenName": RANDOM_GIVEN,
                "emails.0.value": RANDOM_EMAIL,
            },
        ),
        Step(
            "Required Test: Expect failure when recreating user with same values",
            "POST",
            "/Users",
            _spec_create(RANDOM_USERNAME),
            409,
            {"schemas": [ERROR], "status": "409"},
        ),
        Step(
            "Required Test: Username Case Sensitivity Check",
            "GET",
            f'/Users?filter=userName eq "{RANDOM_USERNAME.upper()}"',
            expect={"totalResults": 1, "Resources.0.id": "{idUserOne}"},
        ),
        Step(
            "Optional Test: Verify Groups endpoint",
            "GET",
            "/Groups",
            expect={"schemas": [LIST], "totalResults": 0, "Resources": []},
        ),
        Step(
            "Required Test: Check status 401",
            "GET",
            f'/Users?filter=userName eq "{RANDOM_USERNAME.upper()}"',
            status=401,
            expect={"detail": PRESENT, "status": "401", "schemas": [ERROR]},
            headers={"Authorization": "non-token"},
        ),
        Step(
            "Required Test: Check status 404",
            "GET",
            "/Users/00919288221112222",
            status=404,
            expect={"detail": PRESENT, "status": "404", "schemas": [ERROR]},
        ),
    ]
]

SEQUENCES: dict[str, list[Step]] = {
    "entra-tutorial-users": ENTRA_TUTORIAL_USERS,
    "entra-tutorial-groups": ENTRA_TUTORIAL_GROUPS,
    "entra-tutorial-examples": ENTRA_TUTORIAL_EXAMPLES,
    "entra-default-mapping-paths": ENTRA_DEFAULT_MAPPING_PATHS,
    "entra-known-issues-without-flag": entra_known_issues(flag=False),
    "entra-known-issues-aadOptscim062020": entra_known_issues(flag=True),
    "okta-reference": OKTA_REFERENCE,
    "okta-spec-test": OKTA_SPEC_TEST,
}
