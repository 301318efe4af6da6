"""Large groups fit in one request: a PUT of 10,000 members is well within the SCIM body limit,
and members beyond the drivers' bound values are checked in chunks; a refusal names a few
unknown members and counts the rest, never echoing the whole list."""

import uuid

from roster.domain.mode import Mode
from roster.jobs.imports import run_import
from roster.settings import Settings
from roster.store import directory_reads
from roster.web.scim.patch import PATCH_OP

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _csv(count: int) -> bytes:
    header = "CSV_USERNAME;CSV_FIRSTNAME;CSV_SURNAME;CSV_DISPLAYNAME;CSV_EMAIL"
    rows = [f"u{n};Jan;Jansen;Jan {n};u{n}@example.com" for n in range(count)]
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


async def _group(scim) -> str:
    made = await scim.post("/Groups", json={"schemas": [GROUP], "displayName": "Everyone"})
    assert made.status_code == 201
    return made.json()["id"]


async def test_a_group_put_of_ten_thousand_members_fits(scim, engine):
    slug = scim.tenant.slug
    await run_import(engine, slug, _csv(10_000), mode=Mode.ADD, channel="cli", actor="test")
    async with engine.connect() as conn:
        people = await directory_reads.list_users(conn, scim.tenant.id)
    members = [
        {
            "value": str(p["id"]),
            "display": p["display_name"],
            "$ref": f"https://roster.example.com/scim/v2/Users/{p['id']}",
        }
        for p in people
    ]
    body = {"schemas": [GROUP], "displayName": "Everyone", "members": members}
    group_id = await _group(scim)
    answer = await scim.put(f"/Groups/{group_id}", json=body)
    assert answer.status_code == 200, answer.text[:300]
    assert len(answer.json()["members"]) == 10_000
    assert len(answer.request.content) < Settings().max_scim_bytes / 2
    half = [{"op": "remove", "path": "members", "value": members[:5000]}]
    removed = await scim.patch(
        f"/Groups/{group_id}", json={"schemas": [PATCH_OP], "Operations": half}
    )
    assert removed.status_code == 200 and len(removed.json()["members"]) == 5000


async def test_unknown_members_beyond_the_bound_values_are_a_short_400(scim):
    unknown = [{"value": str(uuid.uuid4())} for _ in range(70_000)]
    answer = await scim.put(
        f"/Groups/{await _group(scim)}",
        json={"schemas": [GROUP], "displayName": "Everyone", "members": unknown},
    )
    assert answer.status_code == 400 and answer.json()["scimType"] == "invalidValue"
    assert "and 69,995 more" in answer.json()["detail"] and len(answer.content) < 500
