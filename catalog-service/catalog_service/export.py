"""Export formats: the rows the read model streams, as CSV our own upload takes back, or NDJSON."""

import csv
import io
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Protocol

import orjson

from catalog_service.index import DatasetView

EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


def dataset_columns(view: DatasetView) -> list[str]:
    """The dataset's columns in the order its files gave them."""
    columns = [name for name, _ in view.head.get("column_types", [])]
    return columns + [name for name, _ in view.columns if name not in columns]


class Encoder(Protocol):
    def header(self) -> bytes: ...

    def rows(self, rows: Iterable[str]) -> bytes: ...


class NdjsonEncoder:
    """One item per line, as the API shows it."""

    def header(self) -> bytes:
        return b""

    def rows(self, rows: Iterable[str]) -> bytes:
        return "".join(f"{row}\n" for row in rows).encode("utf-8")


class CsvEncoder:
    """The dataset's columns, in order; a null is an empty cell, a number is written plainly (never
    with an exponent, which an upload would read as text)."""

    def __init__(self, columns: list[str]) -> None:
        self._columns = columns

    def header(self) -> bytes:
        return self._encode([self._columns])

    def rows(self, rows: Iterable[str]) -> bytes:
        columns = self._columns
        return self._encode([_cell(item.get(column)) for column in columns] for item in map(orjson.loads, rows))

    @staticmethod
    def _encode(records: Iterable[list[Any]]) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(records)
        return out.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        text = repr(value)
        return format(Decimal(text), "f") if "e" in text else text
    return value


def export_encoder(export_format: str, columns: list[str]) -> Encoder:
    return CsvEncoder(columns) if export_format == "csv" else NdjsonEncoder()
