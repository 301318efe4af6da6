"""The console's user list query: search, filters, sort and pages."""

from roster.domain.mode import Mode
from roster.jobs import people
from roster.jobs.imports import run_import
from roster.store import user_search
from roster.store.user_search import Query
from tests.factories import csv_bytes, person


async def _names(engine, tenant, query: Query) -> list[str]:
    async with engine.connect() as conn:
        rows, total = await user_search.search(conn, tenant.id, query)
    assert total >= len(rows)
    return [r["username"] for r in rows]


async def test_search_filters_sort_and_pages(engine, tenant):
    rows = [
        person(1, CSV_SURNAME="Öztürk", CSV_DEPARTMENT="Finance", CSV_EHBO="1"),
        person(2, CSV_SURNAME="Zwanenburg", CSV_DEPARTMENT="IT_Support", CSV_EHBO="0"),
        person(3, CSV_SURNAME="de Vries", CSV_DEPARTMENT="100% Sales", CSV_EHBO="1"),
        *[person(n, CSV_DEPARTMENT="Logistiek") for n in range(10, 70)],
    ]
    rows = [r | {"CSV_EMAIL": f"{r['CSV_USERNAME']}@{tenant.slug}.example"} for r in rows]
    await run_import(engine, tenant.slug, csv_bytes(rows), mode=Mode.ADD, channel="cli", actor="t")
    assert await _names(engine, tenant, Query(text="ÖZTÜRK")) == ["user000001"]  # any case
    assert await _names(engine, tenant, Query(text="it_")) == ["user000002"]
    assert await _names(engine, tenant, Query(text="100%")) == ["user000003"]  # % is a letter
    assert await _names(engine, tenant, Query(text="_")) == ["user000002"]
    assert await _names(engine, tenant, Query(text=f"user000003@{tenant.slug}")) == ["user000003"]
    assert await _names(engine, tenant, Query(first_aider=True, text="user00000")) == [
        "user000001",
        "user000003",
    ]
    first = await _names(engine, tenant, Query(sort="department"))
    assert first[:3] == ["user000003", "user000001", "user000002"]
    second = await _names(engine, tenant, Query(page=2))
    assert len(second) == 13 and second[-1] == "user000069"
    # A change made later is found by its new value, not its old one.
    async with engine.connect() as conn:
        found, _ = await user_search.search(conn, tenant.id, Query(text="user000002@"))
    await people.change(
        engine, tenant.id, found[0]["id"], {"surname": "Bakker"}, channel="console", actor="t"
    )
    assert await _names(engine, tenant, Query(text="bakker")) == ["user000002"]
    assert await _names(engine, tenant, Query(text="zwanenburg")) == []
