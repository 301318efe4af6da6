"""SCIM Groups (the providers' documented sequences are replayed in test_idp_replay.py)."""

import uuid

import sqlalchemy as sa

from roster.store import scim_tokens, tenants
from roster.store.db import writing
from roster.store.schema import audit_events
from tests.scim.payloads import PATCH, entra_user

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


async def make_users(scim, count):
    return [(await scim.post("/Users", json=entra_user(n))).json()["id"] for n in range(count)]


async def test_group_lookup_and_batched_member_changes(scim):
    """What the replayed sequences leave out: a name looked up in another case, several
    members in one operation, and a removal by filter with a rename in one PATCH."""
    alice, bob = await make_users(scim, 2)
    created = await scim.post(
        "/Groups",
        json={"schemas": [GROUP], "externalId": "8aa1a0c0", "displayName": "Group1", "members": []},
    )
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["displayName"] == "Group1" and group["members"] == []

    by_name = await scim.get(
        "/Groups", params={"filter": 'displayName eq "group1"', "excludedAttributes": "members"}
    )
    assert by_name.json()["totalResults"] == 1
    assert (await scim.get("/Groups", params={"filter": 'displayName eq "nope"'})).json()[
        "totalResults"
    ] == 0

    added = await scim.patch(
        f"/Groups/{group['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "Add", "path": "members", "value": [{"value": alice}, {"value": bob}]}
            ],
        },
    )
    assert added.status_code == 200, added.text
    assert {m["value"] for m in added.json()["members"]} == {alice, bob}

    by_filter = await scim.patch(
        f"/Groups/{group['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "remove", "path": f'members[value eq "{alice}"]'},
                {"op": "remove", "path": f'members[value eq "{bob}"]'},
                {"op": "replace", "path": "displayName", "value": "Group One"},
            ],
        },
    )
    assert by_filter.json()["members"] == [] and by_filter.json()["displayName"] == "Group One"

    assert (await scim.delete(f"/Groups/{group['id']}")).status_code == 204
    assert (await scim.get(f"/Groups/{group['id']}")).status_code == 404


async def test_members_must_be_present_users_of_the_organization(scim, engine):
    (alice,) = await make_users(scim, 1)
    async with writing(engine) as conn:
        other = await tenants.create(conn, f"o-{uuid.uuid4().hex[:10]}", "Other")
        _, token = await scim_tokens.create(conn, other.id, "okta")
    foreign = await scim.post(
        "/Users", json=entra_user(7), headers={"Authorization": f"Bearer {token}"}
    )
    stranger = foreign.json()["id"]
    refused = await scim.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "G", "members": [{"value": stranger}]}
    )
    assert refused.status_code == 400 and refused.json()["scimType"] == "invalidValue"
    await scim.delete(f"/Users/{alice}")
    gone = await scim.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "G", "members": [{"value": alice}]}
    )
    assert gone.status_code == 400
    assert (await scim.get("/Groups")).json()["totalResults"] == 0


async def test_removed_user_leaves_the_groups_listing(scim):
    alice, bob = await make_users(scim, 2)
    group = (
        await scim.post(
            "/Groups",
            json={
                "schemas": [GROUP],
                "displayName": "Team",
                "members": [{"value": alice}, {"value": bob}],
            },
        )
    ).json()
    await scim.delete(f"/Users/{alice}")
    members = (await scim.get(f"/Groups/{group['id']}")).json()["members"]
    assert [m["value"] for m in members] == [bob]


async def test_duplicate_group_name_is_409(scim):
    body = {"schemas": [GROUP], "displayName": "Team"}
    assert (await scim.post("/Groups", json=body)).status_code == 201
    again = await scim.post("/Groups", json=body | {"displayName": "TEAM"})
    assert again.status_code == 409 and again.json()["scimType"] == "uniqueness"


async def test_group_changes_are_audited(scim, engine):
    group = (await scim.post("/Groups", json={"schemas": [GROUP], "displayName": "Audited"})).json()
    await scim.put(f"/Groups/{group['id']}", json={"schemas": [GROUP], "displayName": "Renamed"})
    await scim.delete(f"/Groups/{group['id']}")
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(audit_events.c.action, audit_events.c.channel, audit_events.c.after)
                .where(audit_events.c.tenant_id == scim.tenant.id)
                .order_by(audit_events.c.at)
            )
        ).all()
    assert [(r.action, r.channel) for r in rows] == [
        ("group_added", "scim"),
        ("group_updated", "scim"),
        ("group_removed", "scim"),
    ]
    assert rows[1].after["group"] == "Renamed"


async def test_a_put_without_external_id_keeps_it_and_null_clears_it(scim):
    group = (
        await scim.post(
            "/Groups", json={"schemas": [GROUP], "externalId": "8aa1a0c0", "displayName": "Team"}
        )
    ).json()
    kept = await scim.put(f"/Groups/{group['id']}", json={"schemas": [GROUP], "displayName": "T"})
    assert kept.status_code == 200 and kept.json()["externalId"] == "8aa1a0c0"
    assert kept.json()["displayName"] == "T"
    cleared = await scim.put(
        f"/Groups/{group['id']}",
        json={"schemas": [GROUP], "displayName": "T", "externalId": None},
    )
    assert cleared.status_code == 200 and "externalId" not in cleared.json()


async def test_a_filter_on_id_finds_the_group(scim):
    group = (await scim.post("/Groups", json={"schemas": [GROUP], "displayName": "Team"})).json()
    await scim.post("/Groups", json={"schemas": [GROUP], "displayName": "Other"})
    found = await scim.get(
        "/Groups",
        params={"filter": f'id eq "{group["id"]}"', "excludedAttributes": "members"},
    )
    assert [g["id"] for g in found.json()["Resources"]] == [group["id"]]
    none = await scim.get("/Groups", params={"filter": 'id eq "cdb1ce18f65944079d37"'})
    assert none.json()["totalResults"] == 0
