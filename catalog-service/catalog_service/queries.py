"""The questions the read model answers, as SQL over a dataset's table (``read_model.py``).

Every query is built here from checked column names (mapped to the table's own column numbers) and
plain values passed as parameters: nothing a request says becomes SQL text. Values compare as the
catalog stores them (``service_common.catalog_values``), and order as MongoDB sorts them: null (or
missing) first, then numbers, then text, ties in import order.
"""

import math
from dataclasses import dataclass
from typing import Any

import duckdb

from catalog_service.cursors import CursorPosition
from catalog_service.read_model import NULL, NUMBER, TEXT, DatasetTable, kind_of
from catalog_service.schemas import KEY_COLUMN, Filter, FilterOp, SortOrder
from service_common.catalog_values import matching_values, stored_number

# Columns ``q`` searches, the first one the dataset has: the seed's ``title``, IMDB's ``primaryTitle``.
SEARCH_COLUMNS = ("title", "primaryTitle", "name")


@dataclass(frozen=True)
class Column:
    """Where a column's kind, number and text are in the table (SQL expressions of trusted text)."""

    kind: str
    number: str
    text: str


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


@dataclass(frozen=True)
class Selection:
    """The rows a request selects: a SQL condition and its parameters."""

    condition: str
    parameters: list[Any]


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
    return Selection(" AND ".join(parts) or "TRUE", parameters)


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
    if op in _COMPARISONS:
        number = stored_number(value)
        if number is not None:
            return f"({where.kind} = {NUMBER} AND {where.number} {_COMPARISONS[op]} ?)", [float(number)]
        return f"({where.kind} = {TEXT} AND {where.text} {_COMPARISONS[op]} ?)", [value]
    return _text_match(where, op, value)


def _text_match(where: Column, op: FilterOp, value: str) -> tuple[str, list[Any]]:
    """A case-insensitive literal match of text values: ILIKE (cheaper than lowering every value), with
    the pattern's own wildcards escaped."""
    literal = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = {FilterOp.CONTAINS: "%{}%", FilterOp.STARTSWITH: "{}%", FilterOp.ENDSWITH: "%{}"}[op].format(literal)
    return f"({where.kind} = {TEXT} AND {where.text} ILIKE ? ESCAPE '\\')", [pattern]


_COMPARISONS = {FilterOp.GT: ">", FilterOp.GTE: ">=", FilterOp.LT: "<", FilterOp.LTE: "<="}


@dataclass(frozen=True)
class Ordering:
    order_by: str
    # The sort key as a row, for keyset pages: compared with the cursor's position as one value.
    key: str
    descending: bool
    # The text of the sort column of the row with a given seq (a ``?``): a cut cursor's whole value.
    text_at: str = "NULL"


def ordering(table: DatasetTable, order: SortOrder, kinds: set[int]) -> Ordering:
    """``kinds``: which of number and text the column holds. A column of one kind sorts by that value
    alone (much faster); one that mixes them by kind first, as MongoDB does."""
    direction = "DESC" if order.descending else "ASC"
    if order.column is None:
        return Ordering(f"seq {direction}", "(seq)", order.descending)
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


def sort_order(cursor: duckdb.DuckDBPyConnection, table: DatasetTable, order: SortOrder) -> Ordering:
    """``ordering`` for the sort asked for, with the kinds its column holds read from the table."""
    kinds = column_kinds(cursor, table, order.column) if order.column is not None else set()
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


def column_kinds(cursor: duckdb.DuckDBPyConnection, table: DatasetTable, name: str) -> set[int]:
    where = column(table, name)
    if where in (KEY, MISSING):
        return {TEXT} if where is KEY else set()
    found = cursor.execute(
        f"SELECT bool_or({where.kind} = {NUMBER}), bool_or({where.kind} = {TEXT}) FROM {table.table}"
    ).fetchone()
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
) -> tuple[list[tuple[int, str]], int | None]:
    """Up to ``limit`` rows (seq, JSON) after ``skip`` rows or after ``position``, and how many rows
    the selection holds when ``count``."""
    condition, parameters = chosen.condition, list(chosen.parameters)
    if position is not None:
        condition = f"({condition}) AND {position[0]}"
        parameters += position[1]
    rows = cursor.execute(
        f"SELECT seq, row FROM {table.table} WHERE {condition} ORDER BY {order.order_by} LIMIT ? OFFSET ?",
        [*parameters, limit, skip],
    ).fetchall()
    total = None
    if count:
        found = cursor.execute(f"SELECT count(*) FROM {table.table} WHERE {chosen.condition}", chosen.parameters)
        total = found.fetchone()[0]
    return rows, total


def facets(
    cursor: duckdb.DuckDBPyConnection,
    table: DatasetTable,
    chosen: Selection,
    names: list[str],
    *,
    size: int,
    bins: int | None,
) -> dict[str, Any]:
    """Per column: the top ``size`` values with their counts, how many rows are null and how many hold
    another value; with ``bins``, a column of numbers alone gets a histogram instead."""
    matched = None
    answers = []
    for name in names:
        where = column(table, name)
        if bins is not None and column_kinds(cursor, table, name) == {NUMBER}:
            facet = _histogram(cursor, table, chosen, where, bins)
            answers.append({"column": name, **{key: value for key, value in facet.items() if key != "matched"}})
            matched = facet["matched"]
            continue
        # One pass a column: its values' counts, and over them all how many rows, distinct values, nulls.
        grouped = cursor.execute(
            f"SELECT k, n, s, c, count(*) FILTER (WHERE k <> {NULL}) OVER (), sum(c) OVER (), "
            f"coalesce(max(c) FILTER (WHERE k = {NULL}) OVER (), 0) FROM ("
            f"SELECT {where.kind} AS k, {where.number} AS n, {where.text} AS s, count(*) AS c "
            f"FROM {table.table} WHERE {chosen.condition} GROUP BY ALL) "
            f"ORDER BY k = {NULL}, c DESC, k, n, s LIMIT ?",
            [*chosen.parameters, size + 1],
        ).fetchall()
        distinct, matched, nulls = (grouped[0][4], int(grouped[0][5]), grouped[0][6]) if grouped else (0, 0, 0)
        values = [{"value": _value(k, n, t), "count": c} for k, n, t, c, *_ in grouped[:size] if k != NULL]
        listed = sum(value["count"] for value in values)
        answers.append(
            {"column": name, "values": values, "nulls": nulls, "other": matched - nulls - listed, "distinct": distinct}
        )
    return {"total": matched, "facets": answers}


def _histogram(
    cursor: duckdb.DuckDBPyConnection, table: DatasetTable, chosen: Selection, where: Column, bins: int
) -> dict[str, Any]:
    low, high, nulls, matched = cursor.execute(
        f"SELECT min({where.number}), max({where.number}), count(*) FILTER (WHERE {where.kind} = {NULL}), "
        f"count(*) FROM {table.table} WHERE {chosen.condition}",
        chosen.parameters,
    ).fetchone()
    if low is None:
        return {"min": None, "max": None, "bins": [], "nulls": nulls or 0, "matched": matched}
    width = (high - low) / bins if high > low else 1.0
    counts = dict(
        cursor.execute(
            f"SELECT least(floor(({where.number} - ?) / ?)::BIGINT, ?) AS b, count(*) FROM {table.table} "
            f"WHERE ({chosen.condition}) AND {where.kind} = {NUMBER} GROUP BY b",
            [low, width, bins - 1, *chosen.parameters],
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
            {"from": _number(edges[index]), "to": _number(edges[index + 1]), "count": counts.get(index, 0)}
            for index in range(bins)
        ],
        "nulls": nulls,
        "matched": matched,
    }


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


def _value(kind: int, number: float | None, text: str | None) -> Any:
    return _number(number) if kind == NUMBER and number is not None and math.isfinite(number) else text


def start_export(table: DatasetTable, chosen: Selection, order: Ordering) -> Any:
    """The export query, for ``ReadModel.stream``: every selected row's JSON, in order."""
    sql = f"SELECT row FROM {table.table} WHERE {chosen.condition} ORDER BY {order.order_by}"
    return lambda cursor: cursor.execute(sql, chosen.parameters)
