"""SCIM request bodies as Entra ID sends them."""

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def entra_user(n: int = 1, **overrides):
    body = {
        "schemas": [CORE, ENTERPRISE],
        "externalId": f"ext-{n}",
        "userName": f"Test_User_{n}@contoso.com",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": f"Test_User_{n}@contoso.com"}],
        "name": {"formatted": "givenName familyName", "familyName": "Jansen", "givenName": "Jan"},
        "displayName": "Jansen, Jan",
        "title": "Manager",
        "phoneNumbers": [{"type": "mobile", "value": "+31 6 1234 5678"}],
        ENTERPRISE: {"department": "Support", "employeeNumber": "701984"},
    }
    body.update(overrides)
    return body
