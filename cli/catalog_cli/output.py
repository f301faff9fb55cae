"""Turning API answers into what a person reads (tables, summaries) or a program reads (JSON, CSV)."""

import csv
import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

FORMATS = ("table", "json", "csv")
JOB_COLUMNS = ("task_id", "status", "progress", "rows_processed", "rows_failed", "filename", "created_at")
MAX_CELL_WIDTH = 40


def columns_of(items: Iterable[dict[str, Any]], chosen: Sequence[str] | None = None) -> list[str]:
    """``chosen``, or every key in first-seen order with ``id`` first: rows of different files may differ."""
    if chosen:
        return list(chosen)
    seen: dict[str, None] = {"id": None}
    for item in items:
        seen.update(dict.fromkeys(item))
    return list(seen)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def print_table(console: Console, items: list[dict[str, Any]], columns: Sequence[str]) -> None:
    table = Table(show_lines=False, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="ellipsis", no_wrap=True, max_width=MAX_CELL_WIDTH)
    for item in items:
        table.add_row(*(cell(item.get(column)) for column in columns))
    console.print(table)


def write_csv(out: TextIO, items: list[dict[str, Any]], columns: Sequence[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for item in items:
        writer.writerow([cell(item.get(column)) for column in columns])


def write_json(out: TextIO, value: Any) -> None:
    json.dump(value, out, indent=2, ensure_ascii=False)
    out.write("\n")


class JsonArrayWriter:
    """Writes a JSON array item by item, so walking a whole catalog never holds it all in memory."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._count = 0

    def __enter__(self) -> "JsonArrayWriter":
        self._out.write("[")
        return self

    def write(self, item: Any) -> None:
        self._out.write(",\n  " if self._count else "\n  ")
        self._out.write(json.dumps(item, ensure_ascii=False))
        self._count += 1

    def __exit__(self, *exc_info: object) -> None:
        self._out.write("\n]\n" if self._count else "]\n")
        self._out.flush()


def print_job(console: Console, job: dict[str, Any]) -> None:
    """An import job as a short summary, its row errors listed under it."""
    console.print(f"Task      {job['task_id']}")
    console.print(f"Status    {job['status']} ({job.get('progress') or 0}%)")
    size = job.get("size_bytes")
    file_line = f"{job.get('filename')}" + (f" ({decimal(size)})" if isinstance(size, int) else "")
    console.print(f"File      {file_line}, mode {job.get('mode')}, key {job.get('key') or '(row hash)'}")
    console.print(f"Rows      {rows_summary(job)}")
    for label, field in (("Created", "created_at"), ("Started", "started_at"), ("Finished", "finished_at")):
        if job.get(field):
            console.print(f"{label:<9} {job[field]}")
    if job.get("error"):
        console.print(f"Error     {job['error']}")
    print_row_errors(console, job)


def rows_summary(job: dict[str, Any]) -> str:
    counts = ", ".join(
        f"{job.get(f'rows_{name}') or 0:,} {name}" for name in ("inserted", "updated", "duplicate", "failed")
    )
    return f"{job.get('rows_processed') or 0:,} processed: {counts}; {job.get('warnings') or 0:,} warnings"


def print_row_errors(console: Console, job: dict[str, Any]) -> None:
    errors = job.get("errors") or []
    if not errors:
        return
    failed = job.get("rows_failed") or len(errors)
    shown = f"first {len(errors)} of {failed:,}" if failed > len(errors) else f"{len(errors)}"
    console.print(f"Row errors ({shown}):")
    for error in errors:
        console.print(f"  line {error.get('line')}: {error.get('message')}")
