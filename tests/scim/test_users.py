"""SCIM Users over HTTP, as Entra ID and Okta call them."""

import uuid

import httpx
import pytest
import sqlalchemy as sa

from roster.store import scim_tokens, tenants
from roster.store.db import writing
from roster.store.schema import audit_events
from roster.web.app import create_app
from roster.web.scim.common import TOKEN_CACHE_SECONDS, RateLimiter, token_cache
from tests.scim.payloads import CORE, ENTERPRISE, PATCH, entra_user


async def test_create_get_and_audit(scim, engine):
    created = await scim.post("/Users", json=entra_user())
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/scim+json")
    user = created.json()
    assert user["userName"] == "Test_User_1@contoso.com"
    assert user["name"] == {"givenName": "Jan", "familyName": "Jansen"}
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


async def test_an_unusable_username_or_e_mail_is_invalid_value(scim):
    for body, named in (
        (entra_user(userName="Jan Jansen"), "userName"),
        (entra_user(emails=[{"type": "work", "value": "not an address"}]), "emails"),
        (entra_user(emails=[]), "emails"),
    ):
        response = await scim.post("/Users", json=body)
        assert response.status_code == 400
        assert response.json()["scimType"] == "invalidValue"
        assert named in response.json()["detail"]


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


async def test_filter_paging_and_projection(scim):
    for n in range(1, 6):
        assert (await scim.post("/Users", json=entra_user(n))).status_code == 201
    found = (
        await scim.get("/Users", params={"filter": 'userName eq "TEST_USER_3@contoso.com"'})
    ).json()
    assert (
        found["totalResults"] == 1
        and found["Resources"][0]["userName"] == "Test_User_3@contoso.com"
    )
    none = (await scim.get("/Users", params={"filter": 'userName eq "nobody@contoso.com"'})).json()
    assert none["totalResults"] == 0 and none["Resources"] == []
    by_external = (await scim.get("/Users", params={"filter": 'externalId eq "ext-4"'})).json()
    assert [u["externalId"] for u in by_external["Resources"]] == ["ext-4"]
    assert (await scim.get("/Users", params={"filter": 'externalId eq "EXT-4"'})).json()[
        "totalResults"
    ] == 0
    work = (
        await scim.get("/Users", params={"filter": 'emails[type eq "work" and value co "user_2@"]'})
    ).json()
    assert work["totalResults"] == 1
    page = (await scim.get("/Users", params={"startIndex": 2, "count": 2})).json()
    assert page["totalResults"] == 5 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [u["userName"][:11] for u in page["Resources"]] == ["Test_User_2", "Test_User_3"]
    slim = (await scim.get("/Users", params={"attributes": "userName", "count": 1})).json()
    assert set(slim["Resources"][0]) == {"schemas", "id", "meta", "userName"}
    bad = await scim.get("/Users", params={"filter": "userName eq"})
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidFilter"


async def patch(scim, user_id, *operations, **headers):
    return await scim.patch(
        f"/Users/{user_id}",
        json={"schemas": [PATCH], "Operations": list(operations)},
        headers=headers,
    )


async def test_entra_patch_forms(scim):
    user = (await scim.post("/Users", json=entra_user())).json()
    multi = await patch(
        scim,
        user["id"],
        {
            "op": "Replace",
            "path": 'emails[type eq "work"].value',
            "value": "updatedEmail@contoso.com",
        },
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        {"op": "Add", "path": "title", "value": "Director"},
    )
    assert multi.status_code == 200, multi.text
    body = multi.json()
    assert body["emails"][0]["value"] == "updatedEmail@contoso.com"
    assert body["name"]["familyName"] == "updatedFamilyName" and body["title"] == "Director"

    no_path = await patch(
        scim,
        user["id"],
        {
            "op": "replace",
            "value": {
                "displayName": "New Name",
                "name.givenName": "Piet",
                f"{ENTERPRISE}:department": "Finance",
            },
        },
    )
    assert no_path.status_code == 200, no_path.text
    body = no_path.json()
    assert (body["displayName"], body["name"]["givenName"]) == ("New Name", "Piet")
    assert body[ENTERPRISE]["department"] == "Finance"

    mobile = await patch(
        scim,
        user["id"],
        {"op": "add", "path": 'phoneNumbers[type eq "work"].value', "value": "+31 20 123 4567"},
    )
    assert {p["type"] for p in mobile.json()["phoneNumbers"]} == {"work", "mobile"}

    removed = await patch(scim, user["id"], {"op": "remove", "path": "title"})
    assert "title" not in removed.json()


async def test_entra_disable_with_string_boolean_revokes_access(scim):
    user = (await scim.post("/Users", json=entra_user())).json()
    disabled = await patch(scim, user["id"], {"op": "Replace", "path": "active", "value": "False"})
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    enabled = await patch(scim, user["id"], {"op": "replace", "value": {"active": True}})
    assert enabled.json()["active"] is True


async def test_patch_errors(scim):
    user = (await scim.post("/Users", json=entra_user())).json()
    spaced = await patch(scim, user["id"], {"op": "replace", "path": "userName", "value": "x y"})
    assert spaced.status_code == 400 and spaced.json()["scimType"] == "invalidValue"
    bad_op = await patch(scim, user["id"], {"op": "merge", "path": "title", "value": "x"})
    assert bad_op.status_code == 400
    bad_path = await patch(
        scim, user["id"], {"op": "replace", "path": "emails[type eq", "value": "x"}
    )
    assert bad_path.status_code == 400 and bad_path.json()["scimType"] == "invalidPath"
    stale = await patch(
        scim,
        user["id"],
        {"op": "replace", "path": "title", "value": "Boss"},
        **{"If-Match": 'W/"99"'},
    )
    assert stale.status_code == 412
    unchanged = (await scim.get(f"/Users/{user['id']}")).json()
    assert unchanged["title"] == "Manager" and unchanged["meta"]["version"] == 'W/"1"'


async def test_rate_limit_answers_429_with_retry_after(engine):
    async with writing(engine) as conn:
        tenant = await tenants.create(conn, f"r-{uuid.uuid4().hex[:10]}", "Busy org")
        _, token = await scim_tokens.create(conn, tenant.id, "entra-id")
    app = create_app(engine, scim_rate_limit=1)  # one a second, bursts of two
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://roster/scim/v2",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        burst = [(await client.get("/Users", params={"count": 0})).status_code for _ in range(2)]
        assert burst == [200, 200]
        limited = await client.get("/Users")
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["status"] == "429"


def test_rate_limiter_refills_at_its_rate():
    now = [100.0]
    limiter = RateLimiter(10, clock=lambda: now[0])
    token = uuid.uuid4()
    assert [limiter.wait(token) for _ in range(20)] == [0.0] * 20  # a burst of twice the rate
    assert limiter.wait(token) == pytest.approx(0.1)
    now[0] += 0.5  # five more requests' worth
    assert [limiter.wait(token) == 0.0 for _ in range(6)] == [True] * 5 + [False]
    assert limiter.wait(uuid.uuid4()) == 0.0  # every token has its own bucket


async def test_search_endpoints(scim):
    for n in range(1, 4):
        await scim.post("/Users", json=entra_user(n))
    await scim.post(
        "/Groups",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Team"},
    )
    search = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
    users = await scim.post(
        "/Users/.search",
        json={"schemas": [search], "filter": 'externalId eq "ext-2"', "attributes": ["userName"]},
    )
    assert users.status_code == 200
    assert [set(u) for u in users.json()["Resources"]] == [{"schemas", "id", "meta", "userName"}]
    everything = (await scim.post("/.search", json={"schemas": [search], "count": 10})).json()
    assert everything["totalResults"] == 4 and len(everything["Resources"]) == 4
    page = (
        await scim.post("/.search", json={"schemas": [search], "startIndex": 3, "count": 2})
    ).json()
    assert [r["schemas"][0].rsplit(":", 1)[1] for r in page["Resources"]] == ["User", "Group"]
    by_name = (
        await scim.post(
            "/.search", json={"schemas": [search], "filter": 'userName sw "test_user_1"'}
        )
    ).json()
    assert by_name["totalResults"] == 1


async def test_patch_whole_extension_and_removals(scim):
    user = (await scim.post("/Users", json=entra_user())).json()
    replaced = await patch(
        scim,
        user["id"],
        {
            "op": "replace",
            "path": ENTERPRISE,
            "value": {"department": "Finance", "employeeNumber": "9"},
        },
    )
    assert replaced.json()[ENTERPRISE] == {"department": "Finance", "employeeNumber": "9"}
    removed = await patch(
        scim,
        user["id"],
        {"op": "remove", "path": ENTERPRISE},
        {"op": "remove", "path": "externalId"},
    )
    body = removed.json()
    assert ENTERPRISE not in body and ENTERPRISE not in body["schemas"] and "externalId" not in body


async def test_concurrent_creates_of_one_username_give_one_user_and_409s(scim):
    import asyncio

    answers = await asyncio.gather(*(scim.post("/Users", json=entra_user(9)) for _ in range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1 and set(statuses) <= {201, 409}
    found = (await scim.get("/Users", params={"filter": 'externalId eq "ext-9"'})).json()
    assert found["totalResults"] == 1


async def test_concurrent_patches_without_if_match_all_apply(scim):
    import asyncio

    user = (await scim.post("/Users", json=entra_user())).json()
    titles = [f"Title {n}" for n in range(8)]
    answers = await asyncio.gather(
        *(patch(scim, user["id"], {"op": "replace", "path": "title", "value": t}) for t in titles)
    )
    assert [a.status_code for a in answers] == [200] * len(titles)
    final = (await scim.get(f"/Users/{user['id']}")).json()
    assert final["title"] in titles and final["meta"]["version"] == f'W/"{1 + len(titles)}"'


async def test_a_revoked_token_is_refused_once_its_cache_entry_expires(engine):
    async with writing(engine) as conn:
        tenant = await tenants.create(conn, f"c-{uuid.uuid4().hex[:10]}", "Cached org")
        token, secret = await scim_tokens.create(conn, tenant.id, "entra-id")
    now = [100.0]
    app = create_app(engine)
    app.state.scim_tokens = token_cache(clock=lambda: now[0])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://roster/scim/v2",
        headers={"Authorization": f"Bearer {secret}"},
    ) as client:
        assert (await client.get("/Users", params={"count": 0})).status_code == 200
        async with writing(engine) as conn:
            assert await scim_tokens.revoke(conn, tenant.id, token.id)
        # Trusted from the cache for at most TOKEN_CACHE_SECONDS, then asked again.
        assert (await client.get("/Users", params={"count": 0})).status_code == 200
        now[0] += TOKEN_CACHE_SECONDS + 0.1
        refused = await client.get("/Users", params={"count": 0})
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"


async def test_a_username_lookup_sees_only_its_own_organization(scim, engine):
    """Both organizations have the same userName; each token finds only its own user, by the
    plain filter identity providers send and by one the general parser reads."""
    mine = (await scim.post("/Users", json=entra_user(7))).json()
    async with writing(engine) as conn:
        other = await tenants.create(conn, f"o-{uuid.uuid4().hex[:10]}", "Other")
        _, token = await scim_tokens.create(conn, other.id, "okta")
    theirs_header = {"Authorization": f"Bearer {token}"}
    plain = 'userName eq "Test_User_7@contoso.com"'
    parsed = 'userName eq "Test_User_7@contoso.com" and active eq true'
    for query in (plain, parsed):
        found = await scim.get("/Users", params={"filter": query}, headers=theirs_header)
        assert found.status_code == 200 and found.json()["totalResults"] == 0, query
    theirs = await scim.post("/Users", json=entra_user(7), headers=theirs_header)
    assert theirs.status_code == 201
    for query in (plain, parsed):
        own = (await scim.get("/Users", params={"filter": query})).json()
        assert [u["id"] for u in own["Resources"]] == [mine["id"]], query
        other_view = await scim.get("/Users", params={"filter": query}, headers=theirs_header)
        assert [u["id"] for u in other_view.json()["Resources"]] == [theirs.json()["id"]]


async def test_a_put_without_external_id_keeps_it_and_null_clears_it(scim):
    """Okta's documented PUT carries no externalId: its link to the user stays."""
    user = (await scim.post("/Users", json=entra_user())).json()
    body = {k: v for k, v in entra_user(title="Director").items() if k != "externalId"}
    kept = await scim.put(f"/Users/{user['id']}", json=body)
    assert kept.status_code == 200 and kept.json()["externalId"] == "ext-1"
    assert kept.json()["title"] == "Director"
    found = (await scim.get("/Users", params={"filter": 'externalId eq "ext-1"'})).json()
    assert [u["id"] for u in found["Resources"]] == [user["id"]]
    cleared = await scim.put(f"/Users/{user['id']}", json=body | {"externalId": None})
    assert cleared.status_code == 200 and "externalId" not in cleared.json()


async def test_a_filter_on_id_compares_it_whole(scim):
    """RFC 7644 lets a client filter on `id` (Entra ID's reference checks start with
    `id eq "…"`): eq and ne, a value that is no id equal to none."""
    first, second = [(await scim.post("/Users", json=entra_user(n))).json() for n in (1, 2)]

    async def ids(text: str) -> list[str]:
        found = await scim.get("/Users", params={"filter": text, "attributes": "id"})
        assert found.status_code == 200, found.text
        return [u["id"] for u in found.json()["Resources"]]

    assert await ids(f'id eq "{first["id"]}"') == [first["id"]]
    assert await ids(f'ID eq "{first["id"].upper()}" and userName pr') == [first["id"]]
    assert await ids(f'id ne "{first["id"]}"') == [second["id"]]
    assert await ids('id eq "5171a35d82074e068ce2"') == []
    assert await ids('id ne "not-an-id"') == [first["id"], second["id"]]
    refused = await scim.get("/Users", params={"filter": 'id co "5171"'})
    assert refused.status_code == 400 and refused.json()["scimType"] == "invalidFilter"


async def test_a_filter_on_the_manager_reads_either_form_it_was_sent_in(scim):
    """The enterprise manager arrives as {"value": id} (RFC 7643) or, from Entra ID, as the id
    alone; `manager eq`, with or without the extension's URN or `.value`, finds both."""
    boss = {"value": "boss-1", "displayName": "Boss"}
    first = await scim.post("/Users", json=entra_user(1, **{ENTERPRISE: {"manager": boss}}))
    second = await scim.post("/Users", json=entra_user(2, **{ENTERPRISE: {"manager": "boss-1"}}))
    third = await scim.post("/Users", json=entra_user(3, **{ENTERPRISE: {"manager": "Boss-1"}}))
    wanted = [first.json()["id"], second.json()["id"]]
    assert third.status_code == 201
    for name in ("manager", f"{ENTERPRISE}:manager", f"{ENTERPRISE}:manager.value"):
        found = await scim.get("/Users", params={"filter": f'{name} eq "boss-1"'})
        assert found.status_code == 200, found.text
        assert [u["id"] for u in found.json()["Resources"]] == wanted, name
    both = f'id eq "{wanted[1]}" and manager eq "boss-1"'
    found = (await scim.get("/Users", params={"filter": both, "attributes": "id"})).json()
    assert [u["id"] for u in found["Resources"]] == [wanted[1]]
