"""Thin handlers: parse and check the query, call storage, shape the response."""

from aiohttp import web

from catalog_service import storage
from catalog_service.cursors import CursorPosition, InvalidCursor
from catalog_service.keys import CURSORS, SETTINGS
from catalog_service.schemas import bad_parameter, parse_content_query, public_item
from service_common.errors import ApiError
from service_common.paging import link_header, page_links
from service_common.stores import MONGO_DB


async def get_content(request: web.Request) -> web.Response:
    settings, cursors = request.app[SETTINGS], request.app[CURSORS]
    query = parse_content_query(request.query, max_limit=settings.max_limit, max_offset_rows=settings.max_offset_rows)
    fingerprint = query.fingerprint()
    after = None
    if query.cursor is not None:
        try:
            after = cursors.decode(query.cursor, fingerprint)
        except InvalidCursor as exc:
            raise bad_parameter("cursor", str(exc)) from None

    page = await storage.read_page(
        request.app[MONGO_DB],
        filters=query.filters,
        q=query.q,
        order=query.sort,
        limit=query.limit,
        skip=(query.page - 1) * query.limit if after is None else 0,
        after=after,
    )

    next_cursor = None
    if page.has_more:
        last = page.documents[-1]
        position = CursorPosition(sort_value=storage.sort_value(query.sort, last), seq=last["seq"])
        next_cursor = cursors.encode(position, fingerprint)
    links = page_links(
        request,
        limit=query.limit,
        total=page.total,
        max_offset_rows=settings.max_offset_rows,
        offset=query.page if after is None else None,
        next_cursor=next_cursor,
    )
    headers = {"X-Total-Count": str(page.total), "Link": link_header(links)}
    if next_cursor is not None:
        headers["X-Next-Cursor"] = next_cursor
    return web.json_response([public_item(document) for document in page.documents], headers=headers)


async def get_content_item(request: web.Request) -> web.Response:
    document = await storage.find_item(request.app[MONGO_DB], request.match_info["id"])
    if document is None:
        raise ApiError(404, "No catalog item with this id")
    return web.json_response(public_item(document))
