"""Thin handlers: parse and check the query, call storage, shape the response."""

from typing import Any

from aiohttp import web

from catalog_service import storage
from catalog_service.cursors import CursorPosition, InvalidCursor
from catalog_service.index import DatasetView
from catalog_service.keys import CURSORS, INDEX, SETTINGS
from catalog_service.schemas import (
    bad_parameter,
    check_columns,
    check_offset_depth,
    parse_content_query,
    public_item,
)
from service_common.catalog_layout import DEFAULT_DATASET, is_dataset_name
from service_common.errors import ApiError
from service_common.paging import link_header, page_links
from service_common.stores import MONGO_DB

NO_DATASET = "No such dataset"


async def _view(request: web.Request, dataset: str) -> DatasetView | None:
    """The dataset's view; the ``default`` one exists before its first import, empty."""
    view = await request.app[INDEX].view(request.app[MONGO_DB], dataset)
    if view is None and dataset != DEFAULT_DATASET:
        raise ApiError(404, NO_DATASET)
    return view


async def get_content(request: web.Request) -> web.Response:
    settings, cursors = request.app[SETTINGS], request.app[CURSORS]
    query = parse_content_query(request.query, max_limit=settings.max_limit)
    view = await _view(request, query.dataset)
    known = view.column_names if view is not None else set()
    check_columns(query, known)
    in_import_order = storage.in_import_order(query.filters, query.q, query.sort)
    # Offset pages in import order cost one page at any depth; sorted or searched ones skip through a scan.
    max_offset_rows = None if in_import_order else settings.max_offset_rows
    if max_offset_rows is not None and query.cursor is None:
        check_offset_depth(query, max_offset_rows)
    fingerprint = query.fingerprint()
    after = None
    if query.cursor is not None:
        try:
            after = cursors.decode(query.cursor, fingerprint)
        except InvalidCursor as exc:
            raise bad_parameter("cursor", str(exc)) from None

    if view is None:
        page = storage.Page(documents=[], total=0, has_more=False)
    else:
        page = await storage.read_page(
            request.app[MONGO_DB],
            request.app[INDEX],
            view,
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
        position = CursorPosition(sort_value=storage.sort_value(query.sort, last, known), seq=last["seq"])
        next_cursor = cursors.encode(position, fingerprint)
    links = page_links(
        request,
        limit=query.limit,
        total=page.total,
        max_offset_rows=max_offset_rows,
        offset=query.page if after is None else None,
        next_cursor=next_cursor,
    )
    headers = {"X-Total-Count": str(page.total), "Link": link_header(links)}
    if next_cursor is not None:
        headers["X-Next-Cursor"] = next_cursor
    return web.json_response([public_item(document) for document in page.documents], headers=headers)


async def _item(request: web.Request, dataset: str, key: str) -> web.Response:
    document = await storage.find_item(request.app[MONGO_DB], dataset, key)
    if document is None:
        raise ApiError(404, "No catalog item with this id")
    return web.json_response(public_item(document))


async def get_content_item(request: web.Request) -> web.Response:
    return await _item(request, DEFAULT_DATASET, request.match_info["id"])


def _dataset_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not is_dataset_name(name):
        raise ApiError(404, NO_DATASET)
    return name


async def get_dataset_item(request: web.Request) -> web.Response:
    return await _item(request, _dataset_name(request), request.match_info["id"])


def dataset_public(view: DatasetView) -> dict[str, Any]:
    """A dataset as ``GET /datasets`` lists it: counts from the block summaries, never from a scan."""
    head = view.head
    types = dict(head.get("column_types", []))
    return {
        "name": head["_id"],
        "owner": head.get("owner"),
        "owner_username": head.get("owner_username"),
        "key": head.get("key"),
        "status": head.get("status", "active"),
        "items": view.total,
        "columns": [{"name": name, "type": types.get(name, "string"), "items": count} for name, count in view.columns],
        "created_at": _iso(head.get("created_at")),
        "last_import_at": _iso(head.get("last_import_at")),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def list_datasets(request: web.Request) -> web.Response:
    db, index = request.app[MONGO_DB], request.app[INDEX]
    body = []
    for name in await storage.list_datasets(db):
        view = await index.view(db, name)
        if view is not None:
            body.append(dataset_public(view))
    return web.json_response(body, headers={"X-Total-Count": str(len(body))})


async def get_dataset(request: web.Request) -> web.Response:
    name = _dataset_name(request)
    view = await request.app[INDEX].view(request.app[MONGO_DB], name)
    if view is None:
        raise ApiError(404, NO_DATASET)
    return web.json_response(dataset_public(view))
