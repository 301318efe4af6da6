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


async def test_searches_the_cheap_pass_cannot_narrow_cost_more(scim):
    """`co` reads every value with the full matcher: two such searches of 100,000 values are
    refused, where cheap `eq` searches of the same list fit."""
    user = await _user(scim)
    many = [{"value": f"u{i}@example.com", "type": "other"} for i in range(100_000)]
    add = {"op": "add", "path": "emails", "value": many}
    contains = [{"op": "remove", "path": f'emails[value co "nobody{i}"]'} for i in range(2)]
    refused = await scim.patch(
        f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": [add, *contains]}
    )
    assert refused.status_code == 400 and refused.json()["scimType"] == "tooMany"
    equal = [{"op": "remove", "path": f'emails[value eq "nobody{i}@x"]'} for i in range(2)]
    fits = await scim.patch(
        f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": [add, *equal]}
    )
    assert fits.status_code == 200


async def test_a_short_patch_that_reaches_many_values_runs_off_the_loop(monkeypatch):
    """Not the number of operations but the values they reach decide: one operation bringing
    30,000 values is applied on a worker thread."""
    import threading

    from roster.web.scim import patch

    threads = []
    applying = patch.apply_patch

    def recorded(*args):
        threads.append(threading.current_thread())
        return applying(*args)

    monkeypatch.setattr(patch, "apply_patch", recorded)
    resource: dict = {"emails": []}
    many = [{"value": f"u{i}@example.com"} for i in range(30_000)]
    big = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "emails", "value": many}]}
    small = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}
    core = "urn:ietf:params:scim:schemas:core:2.0:User"
    await patch.patched(resource, small, core)
    await patch.patched(resource, big, core)
    assert threads[0] is threading.main_thread() and threads[1] is not threading.main_thread()


async def test_a_long_patch_holds_no_other_organizations_write(scim, engine, monkeypatch):
    """A PATCH is applied before its write's transaction: another organization's create does not
    wait for it (on SQLite every writer of the process takes turns)."""
    import asyncio
    import time
    import uuid

    from roster.store import scim_tokens, tenants
    from roster.store.db import writing
    from roster.web.scim import patch

    user = await _user(scim)
    applying = patch.apply_patch

    def slow(*args):
        time.sleep(1.0)  # a long PATCH, on its worker thread
        return applying(*args)

    monkeypatch.setattr(patch, "ON_THE_LOOP", 0)
    monkeypatch.setattr(patch, "apply_patch", slow)
    async with writing(engine) as conn:
        other = await tenants.create(conn, f"o-{uuid.uuid4().hex[:10]}", "Other")
        _, token = await scim_tokens.create(conn, other.id, "okta")
    theirs = {"Authorization": f"Bearer {token}"}
    body = {"schemas": [PATCH], "Operations": _renames(1)}
    long_patch = asyncio.create_task(scim.patch(f"/Users/{user['id']}", json=body))
    await asyncio.sleep(0.2)  # the PATCH is being applied
    started = time.perf_counter()
    created = await scim.post("/Users", json=entra_user(2), headers=theirs)
    waited = time.perf_counter() - started
    assert created.status_code == 201 and (await long_patch).status_code == 200
    assert waited < 0.5, f"the create waited {waited:.2f} s for the other organization's PATCH"
