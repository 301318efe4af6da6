"""A SCIM PATCH is bounded: its operations, and the list elements its operations search."""

from hypothesis import given
from hypothesis import strategies as st

from roster.web.scim import filter as scim_filter
from roster.web.scim.patch import WORK
from tests.scim.payloads import PATCH, entra_user


async def _user(scim) -> dict:
    created = await scim.post("/Users", json=entra_user())
    assert created.status_code == 201
    return created.json()


def _renames(count: int) -> list[dict]:
    return [{"op": "replace", "path": "title", "value": f"T{i % 9}x"} for i in range(count)]


async def test_a_patch_holds_at_most_the_configured_operations(scim):
    user = await _user(scim)
    url = f"/Users/{user['id']}"
    over = await scim.patch(url, json={"schemas": [PATCH], "Operations": _renames(1001)})
    assert over.status_code == 400
    assert over.json()["scimType"] == "tooMany" and "1,000" in over.json()["detail"]
    assert (await scim.get(url)).json().get("title") == user.get("title")  # nothing applied
    fits = await scim.patch(url, json={"schemas": [PATCH], "Operations": _renames(1000)})
    assert fits.status_code == 200 and fits.json()["title"] == "T0x"


async def test_a_patch_that_searches_too_much_is_refused(scim):
    user = await _user(scim)
    many = [{"value": f"u{i}@example.com", "type": "other"} for i in range(10_000)]
    searches = [
        {"op": "remove", "path": f'emails[value eq "nobody{i}@example.com"]'}
        for i in range(WORK // 10_000 + 1)
    ]
    body = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "emails", "value": many}]}
    body["Operations"] += searches
    answer = await scim.patch(f"/Users/{user['id']}", json=body)
    assert answer.status_code == 400 and answer.json()["scimType"] == "tooMany"


_text = st.sampled_from(["a", "A", "ß", "SS", "ss", "2024-01-01T00:00:00Z", "x"])
_element = st.dictionaries(st.sampled_from(["value", "Value", "type"]), _text | st.integers(0, 2))


@given(st.lists(_element, max_size=6), _text, st.sampled_from(["value", "type"]))
def test_candidates_keep_every_element_the_filter_matches(elements, wanted, attribute):
    node = scim_filter.parse_path(f'x[{attribute} eq "{wanted}"]').filter
    assert node is not None
    every = [e for e in elements if scim_filter.matches(node, e)]
    kept = [e for e in scim_filter.candidates(node, elements) if scim_filter.matches(node, e)]
    assert kept == every


def test_the_matchers_memory_keeps_no_long_values():
    """Values a client sends are remembered only when a key column could hold them: a PATCH
    full of megabyte values leaves the process's memory as it was."""
    from roster.web.scim import filter as scim_filter

    before = scim_filter._remembered_key.cache_info().currsize
    for n in range(20):
        scim_filter._key(f"{n}" + "x" * 1_000_000)
    assert scim_filter._remembered_key.cache_info().currsize == before
    assert scim_filter._key("Ａdmin") == "admin"
