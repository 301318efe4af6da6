"""POST /.search: one query over every resource type (RFC 7644 §3.4.3)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from roster.web.scim import groups, listing, users
from roster.web.scim.common import Reader, Token, read_json

router = APIRouter()


@router.post("/.search")
async def search_everything(request: Request, token: Token, engine: Reader) -> JSONResponse:
    params = listing.Params.of_search(await read_json(request))
    return await listing.respond(request, engine, token, params, users.search, groups.search)
