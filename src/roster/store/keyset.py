"""A long list read in keyset pages: each page the rows after the last one's key, read on a
connection of its own that is given back before the page is used. A download that a slow client
takes minutes over holds no connection and no snapshot meanwhile, and every page costs the same
however far into the list it is (an OFFSET would read every row before it again)."""

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from roster.store.db import read_engine

T = TypeVar("T")
K = TypeVar("K")
PAGE = 1000  # rows a page


async def pages(
    engine: AsyncEngine,
    page: Callable[[AsyncConnection, K | None, int], Awaitable[list[T]]],
    key: Callable[[T], K],
    size: int = PAGE,
) -> AsyncGenerator[list[T], None]:
    """The pages `page(conn, after, size)` reads, `size` rows each, from the first (`after`
    None) on, each after the key of the last row of the one before, until one comes back
    short."""
    after = None
    while True:
        async with read_engine(engine).connect() as conn:
            found = await page(conn, after, size)
        if found:
            yield found
        if len(found) < size:
            return
        after = key(found[-1])
