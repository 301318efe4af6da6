"""Query parameters shared by SCIM list endpoints: filter, paging, attribute projection."""

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from roster.store import scim_tokens
from roster.web.scim import filter as scim_filter
from roster.web.scim.common import read_json, token_of
from roster.web.scim.discovery import LIST, MAX_RESULTS
from roster.web.scim.errors import ScimError, scim_json
from roster.web.scim.note import note_of

ALWAYS = {"id", "schemas", "meta"}
MAX_FILTER = 4096
MAX_START = 2**31 - 1  # beyond any organization, within every database's integers


@dataclass(frozen=True)
class Params:
    """A list request's parameters, from a GET query string or a POST .search body."""

    filter: str | None = None
    start_index: int = 1
    count: int = MAX_RESULTS
    attributes: str | None = None
    excluded: str | None = None

    @classmethod
    def of_query(cls, request: Request) -> "Params":
        if not request.scope.get("query_string"):
            return _NONE_GIVEN  # a write's usual URL: spares parsing an empty query string
        params = request.query_params
        return cls(
            params.get("filter") or None,
            min(max(_number(params.get("startIndex"), 1, "startIndex"), 1), MAX_START),
            min(max(_number(params.get("count"), MAX_RESULTS, "count"), 0), MAX_RESULTS),
            params.get("attributes"),
            params.get("excludedAttributes"),
        )

    @classmethod
    def of_search(cls, body: Any) -> "Params":
        """A SearchRequest (RFC 7644 §3.4.3)."""
        if not isinstance(body, dict):
            raise ScimError(400, "the body must be a SearchRequest object", "invalidSyntax")
        fields = {k.lower(): v for k, v in body.items()}

        def names(value: Any) -> str | None:
            if value is None or isinstance(value, str):
                return value
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return ",".join(value)
            raise ScimError(400, "attributes must be a list of names", "invalidValue")

        start, count = fields.get("startindex", 1), fields.get("count", MAX_RESULTS)
        if not isinstance(start, int) or not isinstance(count, int):
            raise ScimError(400, "startIndex and count must be integers", "invalidValue")
        text = fields.get("filter")
        if text is not None and not isinstance(text, str):
            raise ScimError(400, "filter must be a string", "invalidFilter")
        return cls(
            text or None,
            max(start, 1),
            min(max(count, 0), MAX_RESULTS),
            names(fields.get("attributes")),
            names(fields.get("excludedattributes")),
        )

    @property
    def offset(self) -> int:
        return self.start_index - 1


_NONE_GIVEN = Params()


def filter_of(params: Params) -> scim_filter.Node | None:
    """The request's filter as a tree (None without one); a filter that cannot be read is a
    400."""
    if not params.filter:
        return None
    if len(params.filter) > MAX_FILTER or "\x00" in params.filter:
        raise ScimError(
            400, f"a filter is at most {MAX_FILTER} characters, without NUL", "invalidFilter"
        )
    with filter_refusals():
        return scim_filter.parse(params.filter)


@contextmanager
def filter_refusals() -> Iterator[None]:
    """A filter refused inside (one that cannot be read, or that names what the store cannot
    search by), answered 400 with its SCIM error type."""
    try:
        yield
    except scim_filter.FilterError as error:
        raise ScimError(400, error.message, error.scim_type) from None


def _number(text: str | None, default: int, name: str) -> int:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ScimError(400, f"{name} must be an integer", "invalidValue") from None


def listed(total: int, start_index: int, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def _names(text: str | None) -> list[tuple[str, str | None]]:
    """`attributes=userName,name.givenName,urn:…:User:department` as (attribute, sub) pairs,
    lower-cased; an extension's attributes as (urn, attribute)."""
    found: list[tuple[str, str | None]] = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            path = scim_filter.parse_path(item).attr
        except scim_filter.FilterError as error:
            raise ScimError(400, error.message, "invalidPath") from None
        if path.schema and not path.schema.lower().endswith((":user", ":group")):
            continue
        if path.schema and path.schema.lower() not in (
            "urn:ietf:params:scim:schemas:core:2.0:user",
            "urn:ietf:params:scim:schemas:core:2.0:group",
        ):
            found.append((path.schema.lower(), path.attr.lower()))
        else:
            found.append((path.attr.lower(), path.sub.lower() if path.sub else None))
    return found


def project(params: Params, resource: dict[str, Any]) -> dict[str, Any]:
    """Apply `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5); id and schemas stay."""
    wanted = _names(params.attributes)
    excluded = _names(params.excluded)
    if not wanted and not excluded:
        return resource
    keys = {name.lower(): name for name in resource}
    if wanted:
        kept: dict[str, Any] = {k: v for k, v in resource.items() if k in ALWAYS}
        for attr, sub in wanted:
            name = keys.get(attr)
            if name is None:
                continue
            value = resource[name]
            if sub is None or not isinstance(value, dict):
                kept[name] = value
            else:
                inner = {k: v for k, v in value.items() if k.lower() == sub}
                kept[name] = {**kept.get(name, {}), **inner}
        resource = kept
    for attr, sub in excluded:
        name = keys.get(attr)
        if name is None or name in ALWAYS or name not in resource:
            continue
        if sub is None:
            del resource[name]
        elif isinstance(resource[name], dict):
            resource[name] = {k: v for k, v in resource[name].items() if k.lower() != sub}
    return resource


# One resource type's search: how many match in all, and one page of them as SCIM.
Search = Callable[[Request, scim_tokens.Token, Params], Awaitable[tuple[int, list[Any]]]]


async def respond(
    request: Request, token: scim_tokens.Token, params: Params, *searches: Search
) -> Response:
    """A ListResponse over one resource type, or over several one after another (the root
    /.search); a type whose attributes the filter does not name is left out of the latter."""
    total, answered = 0, 0
    page: list[Any] = []
    refused: ScimError | None = None
    for search in searches:
        window = replace(
            params,
            start_index=max(params.offset - total, 0) + 1,
            count=max(params.count - len(page), 0),
        )
        try:
            found, resources = await search(request, token, window)
        except ScimError as error:
            if error.scim_type != "invalidFilter":
                raise
            refused = error
            continue
        answered += 1
        total += found
        page += resources
    if refused is not None and not answered:
        raise refused
    note_of(request).outcome = f"found {total}" if total else "found none"
    return scim_json(listed(total, params.start_index, page))


def lister(search: Search) -> Callable[[Request], Awaitable[Response]]:
    """GET on a collection (RFC 7644 §3.4.2), over one search."""

    async def list_resources(request: Request) -> Response:
        token = await token_of(request)
        return await respond(request, token, Params.of_query(request), search)

    return list_resources


def searcher(search: Search) -> Callable[[Request], Awaitable[Response]]:
    """POST {collection}/.search (RFC 7644 §3.4.3), over one search."""

    async def search_resources(request: Request) -> Response:
        token = await token_of(request)
        params = Params.of_search(await read_json(request))
        return await respond(request, token, params, search)

    return search_resources
