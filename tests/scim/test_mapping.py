"""Per-organization attribute mapping: which SCIM attributes update which fields."""

import json
import uuid
from datetime import UTC, datetime

from typer.testing import CliRunner

from roster.cli import app
from roster.domain.mapping import DEFAULT, effective, from_scim, to_scim
from roster.store import tenants
from roster.store.db import writing
from tests.scim.payloads import PATCH, entra_user

runner = CliRunner()


def test_round_trip_under_default_and_custom_mappings():
    user = {
        "id": "1",
        "username": "JanJ",
        "first_name": "Jan",
        "surname": "Jansen",
        "display_name": "JJ",
        "title": None,
        "phone": "+31 20",
        "mobile": None,
        "department": "Support",
        "email": "jan@example.com",
        "first_aider": True,
        "emergency_responder": None,
        "profile_photo": None,
        "active": True,
        "external_id": None,
        "extra": {},
    }
    user |= {"created_at": datetime.now(UTC), "updated_at": datetime.now(UTC), "version": 1}
    for mapping in (
        DEFAULT,
        effective(
            {
                "display_name": "name.formatted",
                "department": DEFAULT["department"].replace("department", "division"),
                "phone": None,
            }
        ),
    ):
        back = from_scim(to_scim(user, "http://x", mapping), mapping)
        for field, source in mapping.items():
            if source is not None:
                assert back.get(field) == user[field], (field, source)


async def test_switched_off_and_remapped_attributes(scim, engine):
    async with writing(engine) as conn:
        await tenants.choose_scim_source(conn, scim.tenant.id, "phone", None)
        await tenants.choose_scim_source(conn, scim.tenant.id, "display_name", "nickName")
    body = entra_user(
        nickName="Jantje",
        phoneNumbers=[
            {"type": "work", "value": "+31 20 1"},
            {"type": "mobile", "value": "+31 6 1"},
        ],
    )
    created = (await scim.post("/Users", json=body)).json()
    assert created["displayName"] == "Jantje" and created["nickName"] == "Jantje"
    assert created["phoneNumbers"] == [{"value": "+31 6 1", "type": "mobile"}]
    patched = await scim.patch(
        f"/Users/{created['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "replace", "path": "displayName", "value": "ignored"},
                {"op": "replace", "path": "nickName", "value": "Jan J"},
            ],
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["displayName"] == "Jan J"


def test_cli_mapping(cli_env):
    slug = f"m-{uuid.uuid4().hex[:8]}"
    assert runner.invoke(app, ["tenant", "create", slug, "--name", "M"]).exit_code == 0
    shown = json.loads(
        runner.invoke(app, ["scim", "mapping", "show", "--tenant", slug, "--json"]).stdout
    )
    assert shown == DEFAULT
    changed = runner.invoke(
        app, ["scim", "mapping", "set", "--tenant", slug, "mobile", "off", "--json"]
    )
    assert changed.exit_code == 0 and json.loads(changed.stdout)["mobile"] is None
    refused = runner.invoke(app, ["scim", "mapping", "set", "--tenant", slug, "email", "off"])
    assert refused.exit_code == 1 and "mandatory" in refused.output
    unknown = runner.invoke(app, ["scim", "mapping", "set", "--tenant", slug, "title", "shoeSize"])
    assert unknown.exit_code == 1 and "not a supported source" in unknown.output
    back = runner.invoke(
        app, ["scim", "mapping", "set", "--tenant", slug, "mobile", "default", "--json"]
    )
    assert json.loads(back.stdout) == DEFAULT
