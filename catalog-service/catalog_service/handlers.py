"""Thin handlers: parse and check the query, call storage, shape the response."""

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

import orjson
from aiohttp import web

from catalog_service import queries, storage
from catalog_service.cursors import CursorPosition, InvalidCursor
from catalog_service.export import EXPORT_TYPES, dataset_columns, export_encoder
from catalog_service.index import DatasetView
from catalog_service.keys import ANSWERS, CURSORS, INDEX, PROJECTOR, READ_MODEL, SETTINGS
from catalog_service.projector import ReadModelBehind
from catalog_service.read_model import DatasetTable, QueryBudgetExceeded, TableChanged
from catalog_service.schemas import (
    EXPORT_PARAMETERS,
    FACET_PARAMETERS,
    PLAIN_PARAMETERS,
    ContentQuery,
    PageTooLarge,
    bad_parameter,
    check_columns,
    check_offset_depth,
    parse_content_query,
    parse_export_format,
    parse_facet_query,
    public_item,
)
from catalog_service.settings import CatalogSettings
from service_common.catalog_layout import DEFAULT_DATASET, is_dataset_name
from service_common.datasets import dataset_status
from service_common.errors import ApiError
from service_common.paging import cut_page, page_headers, parse_page_query
from service_common.stores import MONGO_DB

NO_DATASET = "No such dataset"
T = TypeVar("T")


async def _view(request: web.Request, dataset: str) -> DatasetView | None:
    """The dataset's view; the ``default`` one exists before its first import, empty."""
    view = await request.app[INDEX].view(request.app[MONGO_DB], dataset)
    if view is None and dataset != DEFAULT_DATASET:
        raise ApiError(404, NO_DATASET)
    return view


def _budget_error(settings: CatalogSettings) -> ApiError:
    return ApiError(
        503,
        f"The query took longer than its time budget of {settings.query_budget_ms} ms "
        "(CATALOG_QUERY_BUDGET_MS) and was stopped; narrow it with filters, or page with cursor",
        headers={"Retry-After": "1"},
    )


def _behind_error(behind: ReadModelBehind) -> ApiError:
    percent = behind.applied * 100 // max(behind.total, 1)
    return ApiError(
        503,
        f"The read model of dataset {behind.dataset!r} is being built: {behind.applied} of {behind.total} "
        f"blocks ({percent}%); sorts, filters, searches, facets and exports answer once it is done",
        headers={"Retry-After": "5"},
    )


async def _answer(
    request: web.Request,
    view: DatasetView,
    work: Callable[[DatasetTable, Any], T],
    *,
    question: list[Any] | None = None,
) -> T:
    """``work(table, cursor)`` on the dataset's table, brought up to date with ``view`` first,
    within the request's time budget. With ``question`` (JSON: what ``work`` computes), the answer
    is shared with the requests asking the same of the same state of the table."""
    settings = request.app[SETTINGS]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.query_budget_ms / 1000
    try:
        async with asyncio.timeout_at(deadline):
            # Half the budget at most waiting for the read model (right after a large import): the
            # rest is the query's.
            patience = settings.query_budget_ms / 2000
            table = await request.app[PROJECTOR].table_for(request.app[MONGO_DB], view, patience=patience)

        def compute() -> Awaitable[T]:
            return request.app[READ_MODEL].run(lambda cursor: work(table, cursor), deadline)

        if question is None:
            return await compute()
        key = orjson.dumps([table.name, table.created_at, table.version, *question], default=repr)
        return await request.app[ANSWERS].get(key, compute)
    except ReadModelBehind as behind:
        raise _behind_error(behind) from None
    except (QueryBudgetExceeded, TimeoutError):
        raise _budget_error(settings) from None
    except TableChanged:
        message = "The dataset was deleted or replaced while this was read; ask again"
        raise ApiError(503, message, headers={"Retry-After": "1"}) from None


def _search_column(view: DatasetView) -> str | None:
    return queries.search_column(view.column_names)


def _selection(table: DatasetTable, view: DatasetView, query: ContentQuery) -> queries.Selection:
    return queries.selection(table, query.filters, query.q, _search_column(view))


async def get_content(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    query, _ = parse_content_query(request.query, max_limit=settings.max_limit)
    return await _content(request, query)


async def _content(request: web.Request, query: ContentQuery) -> web.Response:
    settings, cursors = request.app[SETTINGS], request.app[CURSORS]
    view = await _view(request, query.dataset)
    known = view.column_names if view is not None else set()
    check_columns(query, known)
    in_import_order = storage.in_import_order(query.filters, query.q, query.sort)
    # Offset pages in import order cost one page at any depth; the engine sorts before it skips.
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
    skip = query.skip if after is None else 0

    try:
        documents, total, has_more, sort_values, seqs = await _page(request, query, view, in_import_order, skip, after)
    except PageTooLarge as exc:
        message = f"The page's items weigh more than {exc.max_bytes // 1024**2} MiB (CATALOG_MAX_PAGE_BYTES)"
        raise bad_parameter("limit", f"{message}: ask for fewer items", message) from None
    next_cursor = None
    if has_more:
        position = CursorPosition(sort_value=sort_values[-1], seq=seqs[-1])
        next_cursor = cursors.encode(position, fingerprint)
    headers = page_headers(
        request,
        query,
        total=total,
        max_limit=settings.max_limit,
        by_cursor=after is not None,
        next_cursor=next_cursor,
        max_offset_rows=max_offset_rows,
    )
    return web.json_response(documents, headers=headers)


async def _page(
    request: web.Request,
    query: ContentQuery,
    view: DatasetView | None,
    in_import_order: bool,
    skip: int,
    after: CursorPosition | None,
) -> tuple[list[dict[str, Any]], int, bool, list[Any], list[int]]:
    """The page's items as the API shows them, the total, whether more follow, and each item's sort
    value and seq (for the next cursor)."""
    if view is None:
        return [], 0, False, [], []
    if not in_import_order:
        return await _engine_page(request, view, query, skip, after)
    known = view.column_names

    def read_page() -> Awaitable[storage.Page]:
        return storage.read_page(
            request.app[MONGO_DB], request.app[INDEX], view, filters=query.filters, query=query, skip=skip,
            after=after,
        )  # fmt: skip

    # The same page of the same view is one read of the store, however many ask for it at once.
    question = [view.name, view.number, query.fingerprint(), query.limit, skip, None if after is None else after.seq]
    page = await request.app[ANSWERS].get(orjson.dumps(question), read_page)
    sort_values = [storage.sort_value(query.sort, d, known) for d in page.documents]
    seqs = [d["seq"] for d in page.documents]
    return [public_item(d) for d in page.documents], page.total, page.has_more, sort_values, seqs


async def _engine_page(
    request: web.Request, view: DatasetView, query: ContentQuery, skip: int, after: CursorPosition | None
) -> tuple[list[dict[str, Any]], int, bool, list[Any], list[int]]:
    """A page of a sorted, filtered or searched query, from the read model, with its exact count."""

    max_bytes = request.app[SETTINGS].max_page_bytes
    # The whole dataset in a column's order: its order table answers at any depth, once it is built.
    by_order = query.sort.column is not None and not query.filters and query.q is None

    def work(table: DatasetTable, cursor: Any) -> tuple[list[tuple[int, str]], int | None, bool]:
        order = queries.sort_order(table, query.sort)
        if by_order:
            found = queries.ordered_page(
                cursor, table, query.sort.column, order, limit=query.fetch_size, skip=skip, position=after,
                max_bytes=max_bytes,
            )  # fmt: skip
            if found is not None:
                return *found, True
        position = None if after is None else queries.after(order, after, query.sort.column is not None)
        selection = _selection(table, view, query)
        rows, total = queries.page(
            cursor, table, selection, order, limit=query.fetch_size, skip=skip, position=position, count=True,
            max_bytes=max_bytes,
        )  # fmt: skip
        return rows, total, False

    position = None if after is None else [after.sort_value, after.seq]
    question = ["page", query.fingerprint(), _search_column(view), query.limit, skip, position]
    rows, total, ordered = await _answer(request, view, work, question=question)
    if by_order and not ordered:
        request.app[PROJECTOR].want_order(view.name, query.sort.column)
    rows, has_more = cut_page(rows, query.limit)
    documents = [orjson.loads(row) for _, row in rows]
    sort_values = [item.get(query.sort.column) if query.sort.column else None for item in documents]
    return documents, total or 0, has_more, sort_values, [seq for seq, _ in rows]


async def _item(request: web.Request, dataset: str, key: str) -> web.Response:
    budget_ms = request.app[SETTINGS].query_budget_ms
    document = await storage.find_item(request.app[MONGO_DB], dataset, key, budget_ms=budget_ms)
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
        "status": dataset_status(head),
        "items": view.total,
        "columns": [{"name": name, "type": types.get(name, "string"), "items": count} for name, count in view.columns],
        # The column ``q`` searches (null: this dataset has none, and ``q`` matches nothing).
        "search_column": queries.search_column(view.column_names),
        "created_at": _iso(head.get("created_at")),
        "last_import_at": _iso(head.get("last_import_at")),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def list_datasets(request: web.Request) -> web.Response:
    """A page of datasets in name order, paged as ``/uploads`` is (``limit``, a 1-based ``offset`` page)."""
    db, index = request.app[MONGO_DB], request.app[INDEX]
    page = parse_page_query(request.query)
    budget_ms = request.app[SETTINGS].query_budget_ms
    names = await storage.list_datasets(db, budget_ms=budget_ms, skip=page.skip, limit=page.limit)
    total = await storage.count_datasets(db, budget_ms=budget_ms)
    body = []
    for name in names:
        view = await index.view(db, name)
        if view is not None:  # deleted since the names were read
            body.append(dataset_public(view))
    return web.json_response(body, headers=page_headers(request, page, total=total))


async def get_dataset(request: web.Request) -> web.Response:
    name = _dataset_name(request)
    view = await request.app[INDEX].view(request.app[MONGO_DB], name)
    if view is None:
        raise ApiError(404, NO_DATASET)
    return web.json_response(dataset_public(view))


async def _dataset_query(request: web.Request, extra: Collection[str], plain: Collection[str]):
    """The query of ``/datasets/{name}/...``: the dataset from the path, the rest as ``/get_content``'s."""
    name = _dataset_name(request)
    query, own = parse_content_query(request.query, max_limit=request.app[SETTINGS].max_limit, extra=extra, plain=plain)
    query = query.model_copy(update={"dataset": name})
    view = await request.app[INDEX].view(request.app[MONGO_DB], name)
    if view is None:
        raise ApiError(404, NO_DATASET)
    check_columns(query, view.column_names)
    return query, own, view


async def get_dataset_contents(request: web.Request) -> web.Response:
    """``/get_content?dataset={name}``, under the dataset's own path."""
    plain = PLAIN_PARAMETERS - {"dataset"}
    query, _, _ = await _dataset_query(request, (), plain)
    return await _content(request, query)


async def get_facets(request: web.Request) -> web.Response:
    query, own, view = await _dataset_query(request, FACET_PARAMETERS, {"q", "type"})
    facet = parse_facet_query(own, view.column_names)

    def work(table: DatasetTable, cursor: Any) -> dict[str, Any]:
        selection = _selection(table, view, query)
        return queries.facets(
            cursor, table, selection, facet.columns, size=facet.size, bins=facet.bins, split=facet.split
        )

    question = ["facets", query.fingerprint(), _search_column(view), facet.columns, facet.size, facet.bins, facet.split]
    answer = await _answer(request, view, work, question=question)
    if not query.filters and query.q is None:
        # The whole dataset's lists, split: kept counted from now on (every column's plain counts are).
        for column in facet.split:
            request.app[PROJECTOR].want_counts(view.name, column)
    return web.json_response(answer)


async def get_export(request: web.Request) -> web.StreamResponse:
    query, own, view = await _dataset_query(request, EXPORT_PARAMETERS, {"q", "type", "sort"})
    export_format = parse_export_format(own)
    settings = request.app[SETTINGS]

    order = await _answer(request, view, lambda table, cursor: queries.sort_order(table, query.sort))
    table = request.app[READ_MODEL].tables[view.name]
    columns = dataset_columns(view)
    response = web.StreamResponse(
        headers={
            "Content-Type": EXPORT_TYPES[export_format],
            "Content-Disposition": f'attachment; filename="{view.name}.{export_format}"',
        }
    )
    rows = queries.export_chunks(table, _selection(table, view, query), order, by_column=query.sort.column is not None)
    chunks = request.app[READ_MODEL].stream(rows, settings.query_budget_ms / 1000)
    try:
        first = await anext(chunks, [])
    except QueryBudgetExceeded:
        raise _budget_error(settings) from None
    await response.prepare(request)
    encode = export_encoder(export_format, columns)
    await response.write(encode.header())
    chunk = first
    try:
        while chunk:
            # Encoding a chunk (a CSV one decodes every row) is off the event loop: other requests go on.
            await response.write(await asyncio.to_thread(encode.rows, [row for (row,) in chunk]))
            chunk = await anext(chunks, [])
    except QueryBudgetExceeded:
        # The answer has begun: the client learns it is cut short by the connection closing early.
        raise ConnectionResetError("export stopped: a chunk took longer than the time budget") from None
    finally:
        await chunks.aclose()
    await response.write_eof()
    return response
