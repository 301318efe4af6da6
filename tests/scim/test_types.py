"""Every attribute of the User and Group schemas, given a value of every JSON type, by POST,
PUT and PATCH: a wrong type is a 400 invalidValue (or invalidSyntax), never a 500."""

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.scim.payloads import ENTERPRISE, PATCH, entra_user

ROSTER = "urn:roster:params:scim:schemas:extension:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
FEW = settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# (container path, attribute): a container is the resource or an extension; "a.b" a
# sub-attribute; "a[].b" the sub-attribute of a multi-valued attribute's element.
USER_ATTRIBUTES = [
    "userName",
    "displayName",
    "nickName",
    "title",
    "userType",
    "externalId",
    "active",
    "name",
    "name.givenName",
    "name.familyName",
    "name.formatted",
    "emails",
    "emails[].value",
    "emails[].type",
    "emails[].primary",
    "phoneNumbers",
    "phoneNumbers[].value",
    "phoneNumbers[].type",
    "photos",
    "photos[].value",
    "schemas",
    ENTERPRISE,
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:employeeNumber",
    f"{ENTERPRISE}:manager",
    f"{ENTERPRISE}:manager.value",
    f"{ENTERPRISE}:costCenter",
    ROSTER,
    f"{ROSTER}:firstAider",
    f"{ROSTER}:emergencyResponder",
]
GROUP_ATTRIBUTES = ["displayName", "externalId", "members", "members[].value", "members[].type"]

LONG = "x" * 5000
WRONG: list[Any] = [True, -1, 1.5, {}, [], None, "", LONG, [[1]], [{}], {"value": {}}]
values = st.sampled_from(WRONG) | st.text(max_size=30) | st.lists(st.integers(), max_size=2)
ACCEPTED = {200, 201, 204}


def every_wrong_value(test):
    """Each of WRONG, besides what hypothesis draws."""
    for value in WRONG:
        test = example(value=value)(test)
    return test


ERRORS = {"invalidValue", "invalidSyntax"}


def put(body: dict[str, Any], attribute: str, value: Any) -> dict[str, Any]:
    """The body with `value` at `attribute` (see USER_ATTRIBUTES)."""
    container = body
    if attribute in (ENTERPRISE, ROSTER):
        body[attribute] = value
        return body
    for urn in (ENTERPRISE, ROSTER):
        if attribute.startswith(f"{urn}:"):
            attribute = attribute.removeprefix(f"{urn}:")
            container = body.setdefault(urn, {})
    name, _, sub = attribute.partition(".")
    if name.endswith("[]"):
        name = name[:-2]
        elements = container.get(name)
        if not isinstance(elements, list) or not elements:
            elements = container[name] = [{"type": "work"}]
        elements[0][sub] = value
    elif sub:
        inner = container.setdefault(name, {})
        inner[sub] = value
    else:
        container[name] = value
    return body


def patch_path(attribute: str) -> str:
    """The PATCH path that names the attribute."""
    if "[]." in attribute:
        name, sub = attribute.split("[].")
        return f'{name}[type eq "work"].{sub}'
    return attribute


def assert_answered(response, attribute: str, value: Any) -> None:
    assert response.status_code < 500, (attribute, value, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert response.status_code in (400, 409), (attribute, value, response.text)
        if response.status_code == 400:
            assert body.get("scimType") in ERRORS | {"noTarget"}, (attribute, value, body)
    else:
        assert response.status_code in ACCEPTED


def a_user() -> dict[str, Any]:
    name = f"u{uuid.uuid4().hex[:12]}@contoso.com"
    return entra_user(userName=name, emails=[{"primary": True, "type": "work", "value": name}])


@pytest.mark.parametrize("attribute", USER_ATTRIBUTES)
@FEW
@every_wrong_value
@given(value=values)
async def test_user_attributes_of_every_type(scim, attribute, value):
    created = await scim.post("/Users", json=put(a_user(), attribute, value))
    assert_answered(created, attribute, value)
    if not hasattr(scim, "user"):  # one user to change, for all of the test's examples
        scim.user = (await scim.post("/Users", json=a_user())).json()["id"]
    replaced = await scim.put(f"/Users/{scim.user}", json=put(a_user(), attribute, value))
    assert_answered(replaced, attribute, value)
    for operation in (
        {"op": "replace", "path": patch_path(attribute), "value": value},
        {"op": "replace", "value": put({}, attribute, value)},
    ):
        patched = await scim.patch(
            f"/Users/{scim.user}", json={"schemas": [PATCH], "Operations": [operation]}
        )
        assert_answered(patched, attribute, (operation, value))


@pytest.mark.parametrize("attribute", GROUP_ATTRIBUTES)
@FEW
@every_wrong_value
@given(value=values)
async def test_group_attributes_of_every_type(scim, attribute, value):
    def group() -> dict[str, Any]:
        return {"schemas": [GROUP], "displayName": f"g{uuid.uuid4().hex[:12]}"}

    created = await scim.post("/Groups", json=put(group(), attribute, value))
    assert_answered(created, attribute, value)
    if not hasattr(scim, "group"):
        scim.group = (await scim.post("/Groups", json=group())).json()["id"]
    replaced = await scim.put(f"/Groups/{scim.group}", json=put(group(), attribute, value))
    assert_answered(replaced, attribute, value)
    for operation in (
        {"op": "replace", "path": patch_path(attribute), "value": value},
        {"op": "add", "path": patch_path(attribute), "value": value},
        {"op": "replace", "value": put({}, attribute, value)},
    ):
        patched = await scim.patch(
            f"/Groups/{scim.group}", json={"schemas": [PATCH], "Operations": [operation]}
        )
        assert_answered(patched, attribute, (operation, value))


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("displayName", True),
        ("displayName", -1),
        ("displayName", {}),
        ("displayName", ["Sales"]),
        ("externalId", 1.5),
        ("members", {"value": "x"}),
        ("members[].value", {}),
    ],
)
async def test_a_wrong_type_in_a_group_is_invalid_value(scim, attribute, value):
    body = put({"schemas": [GROUP], "displayName": "Sales"}, attribute, value)
    response = await scim.post("/Groups", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["scimType"] == "invalidValue"


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("userName", -1),
        ("userName", True),
        ("displayName", {}),
        ("name", "Jan Jansen"),
        ("name.givenName", ["Jan"]),
        ("emails", {"value": "a@b.nl"}),
        ("emails[].value", 7),
        ("phoneNumbers[].value", {}),
        ("active", "yes"),
        ("active", 1),
        (f"{ENTERPRISE}:department", 1.5),
        (f"{ENTERPRISE}:manager.value", []),
        (f"{ROSTER}:firstAider", "1"),
        ("userName", LONG),
    ],
)
async def test_a_wrong_type_in_a_user_is_invalid_value(scim, attribute, value):
    response = await scim.post("/Users", json=put(a_user(), attribute, value))
    assert response.status_code == 400, response.text
    assert response.json()["scimType"] == "invalidValue"


@pytest.mark.parametrize(
    "attribute",
    ["title", "nickName", "externalId", "phoneNumbers", f"{ENTERPRISE}:department", "active"],
)
async def test_null_removes_an_optional_attribute(scim, attribute):
    response = await scim.post("/Users", json=put(a_user(), attribute, None))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "path",
    ["emails[primary gt true].value", 'meta.lastModified gt "March"'],
)
async def test_a_path_filter_that_cannot_compare_is_invalid_path(scim, path):
    user = (await scim.post("/Users", json=a_user())).json()
    operation = {"op": "replace", "path": path, "value": "x"}
    response = await scim.patch(
        f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": [operation]}
    )
    assert response.status_code == 400, response.text
    assert response.json()["scimType"] == "invalidPath"


def test_put_places_values_where_they_belong() -> None:
    assert put({}, "name.givenName", "Jan") == {"name": {"givenName": "Jan"}}
    assert put({}, f"{ENTERPRISE}:department", "x") == {ENTERPRISE: {"department": "x"}}
    assert put({}, ENTERPRISE, 1) == {ENTERPRISE: 1}
    assert put({}, "emails[].value", 1) == {"emails": [{"type": "work", "value": 1}]}
