"""Query parameters shared by SCIM list endpoints: filter, paging, attribute projection."""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import Request

from roster.web.scim import filter as scim_filter
from roster.web.scim.discovery import LIST, MAX_RESULTS
from roster.web.scim.errors import ScimError

ALWAYS = {"id", "schemas", "meta"}


@dataclass(frozen=True)
class Query:
    condition: Any  # SQL condition of the filter
    offset: int
    limit: int
    start_index: int


def query(request: Request, resolve: scim_filter.Resolver) -> Query:
    params = request.query_params
    condition: Any = sa.true()
    if params.get("filter"):
        try:
            condition = scim_filter.to_sql(scim_filter.parse(params["filter"]), resolve)
        except scim_filter.FilterError as error:
            raise ScimError(400, error.message, error.scim_type) from None
    start = _number(params.get("startIndex"), 1, "startIndex")
    count = _number(params.get("count"), MAX_RESULTS, "count")
    return Query(condition, max(start, 1) - 1, min(max(count, 0), MAX_RESULTS), max(start, 1))


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


def project(request: Request, resource: dict[str, Any]) -> dict[str, Any]:
    """Apply `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5); id and schemas stay."""
    wanted = _names(request.query_params.get("attributes"))
    excluded = _names(request.query_params.get("excludedAttributes"))
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
