"""SCIM Users over HTTP, as Entra ID and Okta call them."""

import uuid

import httpx
import pytest
import sqlalchemy as sa

from roster.store import scim_tokens, tenants
from roster.store.db import writing
from roster.store.schema import audit_events
from roster.web.app import create_app

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture
async def scim(engine):
    """A client holding a fresh organization's token."""
    async with writing(engine) as conn:
        tenant = await tenants.create(conn, f"s-{uuid.uuid4().hex[:10]}", "SCIM org")
        _, token = await scim_tokens.create(conn, tenant.id, "entra-id")
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://roster/scim/v2",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        client.tenant = tenant  # type: ignore[attr-defined]
        yield client


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


async def test_create_get_and_audit(scim, engine):
    created = await scim.post("/Users", json=entra_user())
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/scim+json")
    user = created.json()
    assert user["userName"] == "Test_User_1@contoso.com"
    assert user["name"] == {"givenName": "Jan", "familyName": "Jansen", "formatted": "Jan Jansen"}
    assert user["phoneNumbers"] == [{"value": "+31 6 1234 5678", "type": "mobile"}]
    assert user[ENTERPRISE] == {"department": "Support", "employeeNumber": "701984"}
    assert user["meta"]["version"] == 'W/"1"' and created.headers["ETag"] == 'W/"1"'
    assert created.headers["Location"].endswith(f"/scim/v2/Users/{user['id']}")

    fetched = await scim.get(f"/Users/{user['id']}")
    assert fetched.status_code == 200 and fetched.json()["id"] == user["id"]
    async with engine.connect() as conn:
        events = (
            await conn.execute(
                sa.select(audit_events).where(audit_events.c.tenant_id == scim.tenant.id)
            )
        ).all()
    assert [(e.action, e.channel, e.actor) for e in events] == [
        ("added", "scim", "scim token entra-id")
    ]


async def test_duplicate_username_is_409_uniqueness(scim):
    assert (await scim.post("/Users", json=entra_user())).status_code == 201
    again = await scim.post("/Users", json=entra_user(userName="test_user_1@CONTOSO.com"))
    assert again.status_code == 409
    assert again.json()["scimType"] == "uniqueness"
    assert again.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_field_rules_apply_as_for_csv(scim):
    response = await scim.post("/Users", json=entra_user(displayName="x" * 21))
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert "displayName" in response.json()["detail"]


async def test_missing_or_wrong_token_is_401(scim, engine):
    for header in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = await scim.get(
            "/Users/x", headers=header | {"Authorization": header.get("Authorization", "")}
        )
        assert response.status_code == 401
        assert response.json()["status"] == "401"


async def test_other_organization_sees_nothing(scim, engine):
    user = (await scim.post("/Users", json=entra_user())).json()
    async with writing(engine) as conn:
        other = await tenants.create(conn, f"o-{uuid.uuid4().hex[:10]}", "Other")
        _, token = await scim_tokens.create(conn, other.id, "okta")
    response = await scim.get(f"/Users/{user['id']}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    deleted = await scim.delete(
        f"/Users/{user['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert deleted.status_code == 404
    assert (await scim.get(f"/Users/{user['id']}")).status_code == 200


async def test_put_replaces_and_if_match_guards(scim):
    user = (await scim.post("/Users", json=entra_user())).json()
    stale = await scim.put(
        f"/Users/{user['id']}", json=entra_user(title="Director"), headers={"If-Match": 'W/"7"'}
    )
    assert stale.status_code == 412
    replaced = await scim.put(
        f"/Users/{user['id']}", json=entra_user(title="Director"), headers={"If-Match": 'W/"1"'}
    )
    assert replaced.status_code == 200 and replaced.json()["title"] == "Director"
    assert replaced.json()["meta"]["version"] == 'W/"2"'


async def test_disable_and_delete(scim):
    user = (await scim.post("/Users", json=entra_user())).json()
    disabled = await scim.put(f"/Users/{user['id']}", json=entra_user(active=False))
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    assert (await scim.delete(f"/Users/{user['id']}")).status_code == 204
    assert (await scim.get(f"/Users/{user['id']}")).status_code == 404
    again = await scim.post("/Users", json=entra_user())
    assert again.status_code == 201 and again.json()["id"] == user["id"]  # identity returns


async def test_discovery_is_truthful(scim):
    config = (await scim.get("/ServiceProviderConfig")).json()
    assert config["patch"]["supported"] and config["filter"]["supported"]
    assert config["etag"]["supported"] and not config["changePassword"]["supported"]
    assert not config["bulk"]["supported"] and not config["sort"]["supported"]
    types = (await scim.get("/ResourceTypes")).json()
    assert {t["id"] for t in types["Resources"]} == {"User", "Group"}
    user_schema = (await scim.get(f"/Schemas/{CORE}")).json()
    names = {a["name"] for a in user_schema["attributes"]}
    assert {"userName", "name", "emails", "active"} <= names and "addresses" not in names
    assert (await scim.get("/Schemas/urn:nope")).status_code == 404
