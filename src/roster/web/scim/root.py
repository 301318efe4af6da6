"""POST /.search: one query over every resource type (RFC 7644 §3.4.3)."""

from starlette.requests import Request
from starlette.responses import Response

from roster.web.scim import groups, listing, users
from roster.web.scim.common import read_json, route, token_of


async def search_everything(request: Request) -> Response:
    token = await token_of(request)
    params = listing.Params.of_search(await read_json(request))
    return await listing.respond(request, token, params, users.search, groups.search)


routes = [route("/.search", POST=search_everything)]
