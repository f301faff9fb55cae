"""The questions the read model answers, as SQL over a dataset's table (``read_model.py``).

Every query is built here from checked column names (mapped to the table's own column numbers) and
plain values passed as parameters: nothing a request says becomes SQL text. Values compare as the
catalog stores them (``service_common.catalog_values``), and order as MongoDB sorts them: null (or
missing) first, then numbers, then text, ties in import order.
"""

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import duckdb

from catalog_service.cursors import CursorPosition
from catalog_service.read_model import (
    EXPORT_CHUNK_ROWS,
    HAS_NUMBER,
    HAS_TEXT,
    NULL,
    NUMBER,
    TEXT,
    DatasetTable,
    count_table,
    kind_of,
    order_table,
)
from catalog_service.schemas import ITEM_SEPARATOR, KEY_COLUMN, Filter, FilterOp, PageTooLarge, SortOrder
from service_common.catalog_values import matching_values, stored_number

# Columns ``q`` searches, the first one the dataset has: the seed's ``title``, IMDB's ``primaryTitle``.
SEARCH_COLUMNS = ("title", "primaryTitle", "name")


@dataclass(frozen=True)
class Column:
    """Where a column's kind, number and text are in the table (SQL expressions of trusted text)."""

    kind: str
    number: str
    text: str
    # The text lowered by the engine, kept beside it (a count table's ``ls``): matched as it is.
    lowered: str | None = None


# A count table's value (``grouped``): its rows are the column's values, each with how many rows hold it.
COUNTED = Column("k", "n", "s", lowered="ls")
# A column the dataset names but none of its items holds: null everywhere.
MISSING = Column("0", "NULL::DOUBLE", "NULL::VARCHAR")
# ``id`` in a dataset without such a column: each item's key, text.
KEY = Column("2", "NULL::DOUBLE", "key")


def column(table: DatasetTable, name: str) -> Column:
    number = table.columns.get(name)
    if number is not None:
        return Column(f"t{number}", f"n{number}", f"s{number}")
    return KEY if name == KEY_COLUMN else MISSING


def search_column(columns: Any) -> str | None:
    """The column ``q`` searches in a dataset with these columns."""
    return next((name for name in SEARCH_COLUMNS if name in columns), None)


# Rows a page brings out of the engine at a time (``fetch_page``): with items of up to 8 MiB, what
# it holds past the page's limit in bytes stays small.
PAGE_FETCH_ROWS = 4
# The most blocks an import-order export reads at once (``BlockRanges``): about a million rows.
MAX_EXPORT_SPAN = 1_024
# The condition of a selection of every row.
WHOLE = "TRUE"
# A count table lists, beside each value at most this many rows hold, their ``seq`` (``seqs``): a
# selection that its column's count table counts at no more rows is read by ``seq`` (``listed``).
LISTED_ROWS = 10_000
# Rows read by ``seq``: the range first (the engine skips the row groups outside it), then the list.
BY_SEQ = "(seq BETWEEN ? AND ? AND seq IN (SELECT unnest(?)))"


@dataclass(frozen=True)
class Selection:
    """The rows a request selects: a SQL condition and its parameters. When its filters and ``q`` all
    name one column: that column and the same condition over its values (``COUNTED``), so that its
    count table can count the rows instead of a scan (``listed``)."""

    condition: str
    parameters: list[Any]
    counted: tuple[str, str, list[Any]] | None = None
    # Every row the condition holds, by ``seq`` ascending, when known (``listed``).
    seqs: list[int] | None = None


def by_seq(seqs: list[int]) -> tuple[str, list[Any]]:
    """The rows of these ``seq`` (ascending), as a condition and its parameters."""
    return BY_SEQ, [seqs[0], seqs[-1], seqs]


def selection(table: DatasetTable, filters: list[Filter], q: str | None, searched: str | None) -> Selection:
    parts: list[str] = []
    parameters: list[Any] = []
    for item in filters:
        sql, values = _condition(column(table, item.column), item.op, item.value)
        parts.append(sql)
        parameters += values
    if q is not None:
        if searched is None:
            parts.append("FALSE")
        else:
            sql, values = _text_match(column(table, searched), FilterOp.CONTAINS, q)
            parts.append(sql)
            parameters += values
    asked = [(item.column, item.op, item.value) for item in filters]
    if q is not None and searched is not None:
        asked.append((searched, FilterOp.CONTAINS, q))
    counted = None
    if asked and len({name for name, _, _ in asked}) == 1 and (q is None or searched is not None):
        over = [_condition(COUNTED, op, value) for _, op, value in asked]
        counted = (asked[0][0], " AND ".join(sql for sql, _ in over), [v for _, values in over for v in values])
    return Selection(" AND ".join(parts) or WHOLE, parameters, counted)


def listed(cursor: duckdb.DuckDBPyConnection, table: DatasetTable, chosen: Selection) -> tuple[Selection, int | None]:
    """The selection, and how many rows it holds when its column's count table says (else None):
    summed there when the filters and ``q`` name one column whose count table holds this snapshot's
    rows (each distinct value once: from a few to a few times fewer rows than the dataset's for a
    title column).

    When that count is at most ``LISTED_ROWS``, the selection comes back with its rows' ``seq``, read
    from the count table's lists, and a condition that reads those rows alone: the same rows, found
    by ``seq`` in a few of the table's row groups where the condition would read every row (a
    search for a rare phrase, 390 ms at 11M rows as a scan of every title)."""
    if chosen.counted is None or chosen.seqs is not None:
        return chosen, None
    name, condition, parameters = chosen.counted
    kept = _current_counts(cursor, table, name, split=False)
    if kept is None:
        return chosen, None
    total, values = cursor.execute(
        f"SELECT coalesce(sum(c), 0), CASE WHEN sum(c) <= {LISTED_ROWS} THEN list(rowid) END "
        f"FROM {kept} WHERE {condition}",
        parameters,
    ).fetchone()
    total = int(total)
    if not values:
        return chosen, total
    (seqs,) = cursor.execute(
        f"SELECT flatten(list(seqs)) FROM {kept} WHERE rowid IN (SELECT unnest(?))", [values]
    ).fetchone()
    if seqs is None or len(seqs) != total:
        return chosen, total  # a value's list missing: the condition reads the rows
    seqs.sort()
    return Selection(*by_seq(seqs), chosen.counted, seqs), total


def count_rows(cursor: duckdb.DuckDBPyConnection, table: DatasetTable, chosen: Selection) -> int:
    """How many rows the selection holds, counted by a scan: for a selection its count table cannot
    count (``listed`` asks that first)."""
    found = cursor.execute(f"SELECT count(*) FROM {table.table} WHERE {chosen.condition}", chosen.parameters)
    return found.fetchone()[0]


def _equal(where: Column, text: str) -> tuple[str, list[Any]]:
    parts, parameters = [], []
    for value in matching_values(text):
        kind, number, string = kind_of(value)
        if kind == NULL:
            parts.append(f"{where.kind} = {NULL}")
        elif kind == NUMBER:
            parts.append(f"({where.kind} = {NUMBER} AND {where.number} = ?)")
            parameters.append(number)
        else:
            parts.append(f"({where.kind} = {TEXT} AND {where.text} = ?)")
            parameters.append(string)
    return "(" + " OR ".join(parts) + ")", parameters


def _condition(where: Column, op: FilterOp, value: str) -> tuple[str, list[Any]]:
    """One filter; never NULL, so that NOT and AND combine as the user reads them."""
    if op in (FilterOp.EQ, FilterOp.NE):
        sql, parameters = _equal(where, value)
        return (sql if op is FilterOp.EQ else f"(NOT {sql})"), parameters
    if op in (FilterOp.IN, FilterOp.NOTIN):
        parts, parameters = [], []
        for member in value.split(","):
            sql, values = _equal(where, member)
            parts.append(sql)
            parameters += values
        sql = "(" + " OR ".join(parts) + ")"
        return (sql if op is FilterOp.IN else f"(NOT {sql})"), parameters
    if op is FilterOp.ISNULL:
        return (f"({where.kind} = {NULL})" if value == "true" else f"({where.kind} <> {NULL})"), []
    if op is FilterOp.HAS:
        return f"({where.kind} = {TEXT} AND list_contains({_items(where)}, ?))", [value]
    if op in _COMPARISONS:
        number = stored_number(value)
        if number is not None:
            return f"({where.kind} = {NUMBER} AND {where.number} {_COMPARISONS[op]} ?)", [float(number)]
        return f"({where.kind} = {TEXT} AND {where.text} {_COMPARISONS[op]} ?)", [value]
    return _text_match(where, op, value)


def _text_match(where: Column, op: FilterOp, value: str) -> tuple[str, list[Any]]:
    """A case-insensitive literal match of text values. Over a lowered copy of the text (a count
    table's), the lowered value found in it: ``s ILIKE p`` is ``lower(s) LIKE lower(p)`` in the engine
    (tested), and reading stored lowered text is three times cheaper than lowering. Else ILIKE
    (cheaper than lowering every value), with the pattern's own wildcards escaped; without an ESCAPE
    clause when there are none (the engine matches a third faster without one)."""
    if where.lowered is not None:
        found = {FilterOp.CONTAINS: "contains", FilterOp.STARTSWITH: "starts_with", FilterOp.ENDSWITH: "ends_with"}
        return f"({where.kind} = {TEXT} AND {found[op]}({where.lowered}, lower(?)))", [value]
    literal = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = {FilterOp.CONTAINS: "%{}%", FilterOp.STARTSWITH: "{}%", FilterOp.ENDSWITH: "%{}"}[op].format(literal)
    escape = " ESCAPE '\\'" if literal != value else ""
    return f"({where.kind} = {TEXT} AND {where.text} ILIKE ?{escape})", [pattern]


def _items(where: Column) -> str:
    """A text value's distinct items: split on the separator, spaces around each trimmed, empty ones
    dropped (``' Drama, Comedy,,Drama'`` is ``['Drama', 'Comedy']``). A value with no space and no
    empty item (IMDB's ``Comedy,Drama``) is only split: the trimming lambdas cost eight times the
    split (a facet_split of 11M genres: 4.7 s, 0.6 s without them)."""
    text, separator = where.text, ITEM_SEPARATOR
    trimmed = f"list_transform(string_split({text}, '{separator}'), lambda item: trim(item, ' '))"
    plain = (
        f"{text} <> '' AND NOT contains({text}, ' ') AND NOT contains({text}, '{separator * 2}') "
        f"AND NOT starts_with({text}, '{separator}') AND NOT ends_with({text}, '{separator}')"
    )
    return (
        f"CASE WHEN {plain} THEN list_distinct(string_split({text}, '{separator}')) "
        f"ELSE list_distinct(list_filter({trimmed}, lambda item: item <> '')) END"
    )


_COMPARISONS = {FilterOp.GT: ">", FilterOp.GTE: ">=", FilterOp.LT: "<", FilterOp.LTE: "<="}


@dataclass(frozen=True)
class Ordering:
    order_by: str
    # The sort key as a row, for keyset pages: compared with the cursor's position as one value.
    key: str
    descending: bool
    # The text of the sort column of the row with a given seq (a ``?``): a cut cursor's whole value.
    text_at: str = "NULL"
    in_import_order: bool = False


def ordering(table: DatasetTable, order: SortOrder, kinds: set[int]) -> Ordering:
    """``kinds``: which of number and text the column holds. A column of one kind sorts by that value
    alone (much faster); one that mixes them by kind first, as MongoDB does."""
    direction = "DESC" if order.descending else "ASC"
    if order.column is None:
        return Ordering(f"seq {direction}", "(seq)", order.descending, in_import_order=True)
    where = column(table, order.column)
    nulls = "NULLS LAST" if order.descending else "NULLS FIRST"
    if kinds <= {NUMBER}:
        by = f"{where.number} {direction} {nulls}, seq {direction}"
    elif kinds == {TEXT}:
        by = f"{where.text} {direction} {nulls}, seq {direction}"
    else:
        by = f"{where.kind} {direction}, {where.number} {direction}, {where.text} {direction}, seq {direction}"
    key = f"({where.kind}, coalesce({where.number}, 0), coalesce({where.text}, ''), seq)"
    text_at = f"(SELECT {where.text} FROM {table.table} WHERE seq = ? LIMIT 1)"
    return Ordering(by, key, order.descending, text_at)


def sort_order(table: DatasetTable, order: SortOrder) -> Ordering:
    """``ordering`` for the sort asked for, with the kinds of value its column has held (a superset of
    those it holds: a column that held text once sorts as a mixed one, which is right for any values)."""
    if order.column is None:
        return ordering(table, order, set())
    where = column(table, order.column)
    if where in (KEY, MISSING):
        return ordering(table, order, {TEXT} if where is KEY else set())
    bits = table.kinds.get(order.column, HAS_NUMBER | HAS_TEXT)
    kinds = {kind for kind, bit in ((NUMBER, HAS_NUMBER), (TEXT, HAS_TEXT)) if bits & bit}
    return ordering(table, order, kinds)


def after(ordering: Ordering, position: CursorPosition, by_column: bool) -> tuple[str, list[Any]]:
    """Rows strictly after ``position`` in ``ordering``."""
    sign = "<" if ordering.descending else ">"
    if not by_column:
        return f"seq {sign} ?", [position.seq]
    kind, number, text = kind_of(position.sort_value)
    if position.cut:
        # The cursor holds the start of a long text: the item it stopped at holds the rest. Should that
        # item be gone since (a revert), the start alone places the page, at worst repeating a few rows.
        return (
            f"{ordering.key} {sign} (?, ?, coalesce({ordering.text_at}, ?), ?)",
            [kind, 0.0, position.seq, text, position.seq],
        )
    return f"{ordering.key} {sign} (?, ?, ?, ?)", [kind, number or 0.0, text or "", position.seq]


def order_column(table: DatasetTable, name: str) -> str | None:
    """How the order table of a sort by ``name`` is named (``read_model.order_table``); None for a
    column no item holds, whose order is import order."""
    number = table.columns.get(name)
    if number is not None:
        return str(number)
    return "key" if name == KEY_COLUMN else None


def order_key(table: DatasetTable, name: str) -> tuple[str, str, str]:
    where = column(table, name)
    return where.kind, where.number, where.text


def ordered_page(
    cursor: duckdb.DuckDBPyConnection,
    table: DatasetTable,
    name: str,
    order: Ordering,
    *,
    limit: int,
    skip: int,
    position: CursorPosition | None,
    max_bytes: int,
) -> tuple[list[tuple[int, str]], int] | None:
    """A page of the whole dataset sorted by column ``name``, read from its order table: a range of
    positions, then the rows of those ``seq``, so any depth costs the same. None when the table has
    none, or one the rows have changed since (in this snapshot): the caller scans instead."""
    chosen = order_column(table, name)
    if chosen is None:
        return None
    if not _current(cursor, "rm_orders", table.name, chosen):
        return None
    ordered = order_table(table.name, chosen)
    total = cursor.execute(f"SELECT count(*) FROM {ordered}").fetchone()[0]
    # How many rows of the order asked for come before the page.
    first = skip if position is None else _rank_after(cursor, ordered, total, _position_key(position), order.descending)
    if order.descending:  # rank r of the descending order is position total - 1 - r of the ascending
        low, high = total - first - limit, total - first - 1
    else:
        low, high = first, first + limit - 1
    seqs = [
        seq
        for (seq,) in cursor.execute(
            f"SELECT seq FROM {ordered} WHERE pos BETWEEN ? AND ? ORDER BY pos {'DESC' if order.descending else 'ASC'}",
            [max(low, 0), high],
        ).fetchall()
    ]
    if not seqs:
        return [], total
    rows = dict(
        fetch_page(
            cursor.execute(f"SELECT seq, row FROM {table.table} WHERE seq IN (SELECT unnest(?))", [seqs]), max_bytes
        )
    )
    return [(seq, rows[seq]) for seq in seqs], total


def fetch_page(result: duckdb.DuckDBPyConnection, max_bytes: int) -> list[tuple[int, str]]:
    """A page's rows (seq, JSON), a few at a time: past ``max_bytes`` of JSON the page is refused
    (``PageTooLarge``) before the rest is brought out of the engine."""
    rows: list[tuple[int, str]] = []
    size = 0
    while chunk := result.fetchmany(PAGE_FETCH_ROWS):
        size += sum(len(row) for _, row in chunk)
        if size > max_bytes:
            raise PageTooLarge(max_bytes)
        rows += chunk
    return rows


def _position_key(position: CursorPosition) -> tuple[int, float, str, int]:
    kind, number, text = kind_of(position.sort_value)
    return kind, number or 0.0, text or "", position.seq


def _rank_after(
    cursor: duckdb.DuckDBPyConnection, ordered: str, total: int, key: tuple[int, float, str, int], descending: bool
) -> int:
    """How many rows come up to and including ``key`` in the order asked for: a binary search over the
    order table's positions, one row per probe."""
    low, high = 0, total  # the first ascending position whose key is greater (ascending) or not smaller
    while low < high:
        middle = (low + high) // 2
        k, n, s, seq = cursor.execute(f"SELECT k, n, s, seq FROM {ordered} WHERE pos = ?", [middle]).fetchone()
        found = (k, n or 0.0, s or "", seq)
        if found < key or (found == key and not descending):
            low = middle + 1
        else:
            high = middle
    return low if not descending else total - low


def column_kinds(cursor: duckdb.DuckDBPyConnection, table: DatasetTable, name: str) -> set[int]:
    """Which of number and text the column holds now, in the whole dataset (so a chart keeps its kind
    under any filter): from its count table when current, else a scan."""
    where = column(table, name)
    if where in (KEY, MISSING):
        return {TEXT} if where is KEY else set()
    kept = _kept_counts(cursor, table, Selection(WHOLE, []), name, split=False)
    source, kind = (kept, "k") if kept is not None else (table.table, where.kind)
    found = cursor.execute(f"SELECT bool_or({kind} = {NUMBER}), bool_or({kind} = {TEXT}) FROM {source}").fetchone()
    return {kind for kind, present in zip((NUMBER, TEXT), found or (), strict=False) if present}


def page(
    cursor: duckdb.DuckDBPyConnection,
    table: DatasetTable,
    chosen: Selection,
    order: Ordering,
    *,
    limit: int,
    skip: int,
    position: tuple[str, list[Any]] | None,
    count: bool,
    max_bytes: int,
) -> tuple[list[tuple[int, str]], int | None]:
    """Up to ``limit`` rows (seq, JSON) after ``skip`` rows or after ``position``, and how many rows
    the selection holds when ``count``.

    The count comes first: when it says the page is empty (no row matches, or fewer than ``skip``),
    the page's scan is not run. A search or filter matching nothing would otherwise read every row
    looking for one (300 ms at 11M), where its count from a count table takes a tenth of that. A
    selection of few rows is read by ``seq`` (``listed``); in import order, only the page's own."""
    total = None
    if count:
        chosen, total = listed(cursor, table, chosen)
        if total is None:
            total = count_rows(cursor, table, chosen)
    if total is not None and (total == 0 or (position is None and total <= skip)):
        return [], total
    if chosen.seqs is not None and order.in_import_order and position is None:
        seqs = chosen.seqs[::-1] if order.descending else chosen.seqs
        chosen = Selection(*by_seq(sorted(seqs[skip : skip + limit])))
        skip = 0
    condition, parameters = chosen.condition, list(chosen.parameters)
    if position is not None:
        condition = f"({condition}) AND {position[0]}"
        parameters += position[1]
    rows = fetch_page(
        cursor.execute(
            f"SELECT seq, row FROM {table.table} WHERE {condition} ORDER BY {order.order_by} LIMIT ? OFFSET ?",
            [*parameters, limit, skip],
        ),
        max_bytes,
    )
    return rows, total


def facets(
    cursor: duckdb.DuckDBPyConnection,
    table: DatasetTable,
    chosen: Selection,
    names: list[str],
    *,
    size: int,
    bins: int | None,
    split: Collection[str] = (),
) -> dict[str, Any]:
    """Per column: the top ``size`` values with their counts, how many rows are null and how many hold
    another value; with ``bins``, a column of numbers alone gets a histogram instead. A ``split``
    column's text values count item by item, each item once per row (``_items``); a number stays one
    value. Its ``other`` then counts the (row, item) pairs beyond the listed ones.

    Over the whole dataset, a column's count table (``grouped``), when it holds the rows of this
    snapshot, stands in for the scan: the same values and counts, read from far fewer rows."""
    chosen, matched = listed(cursor, table, chosen)
    answers = []
    for name in names:
        kept = _kept_counts(cursor, table, chosen, name, split=name in split)
        if name in split:
            facet = _top_values(cursor, *grouped(table, chosen, name, True, kept), size)
            del facet["counted"]  # (row, item) pairs, not rows
            answers.append({"column": name, **facet, "split": True})
            continue
        source = grouped(table, chosen, name, False, kept)
        if bins is not None and column_kinds(cursor, table, name) == {NUMBER}:
            facet = _histogram(cursor, *source, bins)
            answers.append({"column": name, **{key: value for key, value in facet.items() if key != "matched"}})
            matched = facet["matched"]
            continue
        facet = _top_values(cursor, *source, size)
        matched = facet.pop("counted")
        answers.append({"column": name, **facet})
    if matched is None:
        matched = count_rows(cursor, table, chosen)
    return {"total": matched, "facets": answers}


def grouped(
    table: DatasetTable, chosen: Selection, name: str, split: bool, kept: str | None = None, *, seqs: bool = False
) -> tuple[str, list[Any]]:
    """SQL giving, per value of column ``name`` among the selected rows, its kind ``k``, number ``n``,
    text ``s`` and how many rows hold it ``c`` (``split``: each item of a text once per row), with its
    parameters; read from the count table ``kept`` when there is one. Without parameters over the
    whole dataset: what a count table is built from (``ReadModel.build_counts``), with ``seqs``
    the ``seq`` of the rows of each value at most ``LISTED_ROWS`` rows hold (unsorted)."""
    if kept is not None:
        return f"SELECT k, n, s, c FROM {kept}", []
    where = column(table, name)
    if not split:
        listing = f", CASE WHEN count(*) <= {LISTED_ROWS} THEN list(seq) END AS seqs" if seqs else ""
        return (
            f"SELECT {where.kind} AS k, {where.number} AS n, {where.text} AS s, count(*) AS c{listing} "
            f"FROM {table.table} WHERE {chosen.condition} GROUP BY ALL",
            list(chosen.parameters),
        )
    return (
        f"SELECT k, n, s, count(*) AS c FROM ("
        f"SELECT {where.kind} AS k, NULL::DOUBLE AS n, unnest({_items(where)}) AS s FROM {table.table} "
        f"WHERE ({chosen.condition}) AND {where.kind} = {TEXT} "
        f"UNION ALL SELECT {where.kind}, {where.number}, {where.text} FROM {table.table} "
        f"WHERE ({chosen.condition}) AND {where.kind} <> {TEXT}) GROUP BY ALL",
        [*chosen.parameters, *chosen.parameters],
    )


def _kept_counts(
    cursor: duckdb.DuckDBPyConnection, table: DatasetTable, chosen: Selection, name: str, *, split: bool
) -> str | None:
    """The column's count table, when the selection is the whole dataset and the table holds the rows
    as this snapshot sees them; None otherwise (the caller scans)."""
    return _current_counts(cursor, table, name, split=split) if chosen.condition == WHOLE else None


def _current_counts(cursor: duckdb.DuckDBPyConnection, table: DatasetTable, name: str, *, split: bool) -> str | None:
    """The column's count table when it holds the rows as this snapshot sees them, else None."""
    chosen_column = order_column(table, name)
    if chosen_column is None or not _current(cursor, "rm_counts", table.name, chosen_column, split=split):
        return None
    return count_table(table.name, chosen_column, split)


def _current(
    cursor: duckdb.DuckDBPyConnection, registry: str, dataset: str, column: str, *, split: bool | None = None
) -> bool:
    """Whether the derived table of the column that ``registry`` records (``rm_orders``; ``rm_counts``,
    by ``split`` too) was built at the change count this snapshot sees: it holds the same rows."""
    where, parameters = "r.dataset = ? AND r.col = ?", [dataset, column]
    if split is not None:
        where, parameters = f"{where} AND r.split = ?", [*parameters, split]
    found = cursor.execute(
        f"SELECT r.changes = d.changes FROM {registry} r JOIN rm_datasets d ON d.name = r.dataset WHERE {where}",
        parameters,
    ).fetchone()
    return found is not None and bool(found[0])


def _top_values(cursor: duckdb.DuckDBPyConnection, source: str, parameters: list[Any], size: int) -> dict[str, Any]:
    """The top ``size`` values of ``source`` (``grouped``, computed once), and over all of them how
    many distinct values, rows (or items) and nulls: a top-N, never a sort of every value (a free-text
    column has millions)."""
    found = cursor.execute(
        f"WITH g AS MATERIALIZED ({source}), "
        f"top AS (SELECT k, n, s, c FROM g WHERE k <> {NULL} ORDER BY c DESC, k, n, s LIMIT ?) "
        f"SELECT 0 AS part, k, n, s, c FROM top "
        f"UNION ALL SELECT 1, NULL, NULL, NULL, count(*) FILTER (WHERE k <> {NULL}) FROM g "
        f"UNION ALL SELECT 2, NULL, NULL, NULL, coalesce(sum(c), 0) FROM g "
        f"UNION ALL SELECT 3, NULL, NULL, NULL, coalesce(sum(c) FILTER (WHERE k = {NULL}), 0) FROM g "
        f"ORDER BY part, c DESC, k, n, s",
        [*parameters, size],
    ).fetchall()
    values = [{"value": _value(k, n, t), "count": c} for part, k, n, t, c in found if part == 0]
    distinct, counted, nulls = (int(c) for part, *_, c in found if part > 0)
    other = counted - nulls - sum(value["count"] for value in values)
    return {"values": values, "nulls": nulls, "other": other, "distinct": distinct, "counted": counted}


def _histogram(cursor: duckdb.DuckDBPyConnection, source: str, parameters: list[Any], bins: int) -> dict[str, Any]:
    low, high, nulls, matched = cursor.execute(
        f"SELECT min(n), max(n), coalesce(sum(c) FILTER (WHERE k = {NULL}), 0), coalesce(sum(c), 0) FROM ({source})",
        parameters,
    ).fetchone()
    nulls, matched = int(nulls), int(matched)
    if low is None:
        return {"min": None, "max": None, "bins": [], "nulls": nulls, "matched": matched}
    width = (high - low) / bins if high > low else 1.0
    # The division places a value to within one bin of rounding; comparing it with the edges as the
    # answer gives them (``low + width * index``) settles it, so that a bin holds exactly the values
    # ``from <= v < to`` (the last one also ``max``): what a gte/lt filter of the bin selects.
    counts = dict(
        cursor.execute(
            f"SELECT b - (v < ? + ? * b)::BIGINT + (b < ? AND v >= ? + ? * (b + 1))::BIGINT AS bin, sum(c) "
            f"FROM (SELECT n AS v, c, least(floor((n - ?) / ?)::BIGINT, ?) AS b "
            f"FROM ({source}) WHERE k = {NUMBER}) GROUP BY bin",
            [low, width, bins - 1, low, width, low, width, bins - 1, *parameters],
        ).fetchall()
    )
    edges = [low + width * index for index in range(bins)] + [high]
    if high == low:
        edges = [low, high]
        bins = 1
    return {
        "min": _number(low),
        "max": _number(high),
        "bins": [
            {"from": _number(edges[index]), "to": _number(edges[index + 1]), "count": int(counts.get(index, 0))}
            for index in range(bins)
        ],
        "nulls": nulls,
        "matched": matched,
    }


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


def _value(kind: int, number: float | None, text: str | None) -> Any:
    return _number(number) if kind == NUMBER and number is not None and math.isfinite(number) else text


class SortedRows:
    """One query, its rows fetched a chunk at a time (the whole selection is sorted before the first)."""

    def __init__(self, sql: str, chosen: Selection) -> None:
        self._sql, self._parameters = sql, chosen.parameters
        self._started = False

    def __call__(self, cursor: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
        if not self._started:
            cursor.execute(self._sql, self._parameters)
            self._started = True
        return cursor.fetchmany(EXPORT_CHUNK_ROWS)


class BlockRanges:
    """The selected rows in import order, read a range of blocks at a time: blocks hold disjoint ranges
    of ``seq`` in the order of their first one (``blk``), and the table keeps a block's rows together,
    so each chunk reads only the row groups of its blocks and sorts only its own rows. Nothing sorts
    the whole table, so the first rows of any size come at once and each chunk stays within the time
    budget. The range widens while chunks come out small (a selective filter) and narrows when large."""

    def __init__(self, table: DatasetTable, chosen: Selection, *, descending: bool) -> None:
        self._table, self._chosen, self._descending = table, chosen, descending
        self._firsts: list[int] | None = None
        self._at = 0
        self._span = max(EXPORT_CHUNK_ROWS // 1_000, 1)  # blocks hold about 1,000 rows

    def __call__(self, cursor: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
        direction = "DESC" if self._descending else "ASC"
        table = self._table.table
        if self._firsts is None:
            found = cursor.execute(f"SELECT DISTINCT blk FROM {table} ORDER BY blk {direction}").fetchall()
            self._firsts = [first for (first,) in found]
        while self._at < len(self._firsts):
            group = self._firsts[self._at : self._at + self._span]
            self._at += len(group)
            rows = cursor.execute(
                f"SELECT row FROM {table} WHERE ({self._chosen.condition}) AND blk BETWEEN ? AND ? "
                f"ORDER BY seq {direction}",
                [*self._chosen.parameters, min(group), max(group)],
            ).fetchall()
            if len(rows) < EXPORT_CHUNK_ROWS // 2:
                self._span = min(self._span * 2, MAX_EXPORT_SPAN)
            elif len(rows) > EXPORT_CHUNK_ROWS * 2:
                self._span = max(self._span // 2, 1)
            if rows:
                return rows
        return []


ExportChunks = SortedRows | BlockRanges


def export_chunks(table: DatasetTable, chosen: Selection, order: Ordering, *, by_column: bool) -> ExportChunks:
    """The export's chunks, for ``ReadModel.stream``: every selected row's JSON, in order. In import
    order, a range of blocks at a time (``BlockRanges``); in a column's order, one sorted query."""
    if not by_column:
        return BlockRanges(table, chosen, descending=order.descending)
    return SortedRows(f"SELECT row FROM {table.table} WHERE {chosen.condition} ORDER BY {order.order_by}", chosen)
