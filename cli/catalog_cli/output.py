"""Turning API answers into what a person reads (tables, summaries) or a program reads (JSON, CSV)."""

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

FORMATS = ("table", "json", "csv")
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


def print_table(console: Console, items: list[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """Prints the columns that fit the console's width, in order; returns the ones left out."""
    shown, left_out, width = [], [], 0
    for column in columns:
        natural = min(MAX_CELL_WIDTH, max([len(column), *(len(cell(item.get(column))) for item in items)]))
        # A column is never narrowed below what its header needs, so a crowded table drops columns instead.
        if shown and width + natural + 3 > console.width:
            left_out.append(column)
            continue
        shown.append(column)
        width += natural + 3
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for column in shown:
        table.add_column(column, overflow="ellipsis", no_wrap=True, max_width=MAX_CELL_WIDTH)
    for item in items:
        table.add_row(*(cell(item.get(column)) for column in shown))
    console.print(table)
    return left_out


def print_jobs(console: Console, jobs: list[dict[str, Any]]) -> None:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    # An admin's listing holds everyone's jobs: then it says whose each one is.
    owners = len({job.get("owner") for job in jobs}) > 1
    # The task id is what a user copies into `status` or `cancel`: it is never shortened.
    table.add_column("Task", no_wrap=True, min_width=36)
    if owners:
        table.add_column("Owner", no_wrap=True)
    table.add_column("Status", no_wrap=True, min_width=7)
    table.add_column("Rows", justify="right", no_wrap=True)
    table.add_column("File", overflow="ellipsis", no_wrap=True, max_width=MAX_CELL_WIDTH)
    table.add_column("Created", no_wrap=True)
    for job in jobs:
        running = job["status"] in ("Progress", "Paused")
        state = f"{job['status']} {job.get('progress') or 0}%" if running else job["status"]
        rows = f"{job.get('rows_processed') or 0:,}"
        if job.get("rows_failed"):
            rows += f" ({job['rows_failed']:,} failed)"
        owner = [cell(job.get("owner"))] if owners else []
        table.add_row(
            job["task_id"], *owner, state, rows, cell(job.get("filename")), local_minute(job.get("created_at"))
        )
    console.print(table)


def print_users(console: Console, users: list[dict[str, Any]]) -> None:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("Username", no_wrap=True)
    table.add_column("E-mail", overflow="ellipsis", no_wrap=True, max_width=MAX_CELL_WIDTH)
    table.add_column("Roles", no_wrap=True)
    table.add_column("Account", no_wrap=True)
    table.add_column("Id", no_wrap=True, min_width=36)
    table.add_column("Created", no_wrap=True)
    for user in users:
        table.add_row(
            cell(user.get("username")),
            cell(user.get("email")),
            ", ".join(user.get("roles") or []),
            "disabled" if user.get("disabled") else "active",
            cell(user.get("id")),
            local_minute(user.get("created_at")),
        )
    console.print(table)


def print_datasets(console: Console, datasets: list[dict[str, Any]]) -> None:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("Dataset", no_wrap=True)
    table.add_column("Items", justify="right", no_wrap=True)
    table.add_column("Key", no_wrap=True)
    table.add_column("Owner", no_wrap=True)
    table.add_column("Columns", overflow="ellipsis", no_wrap=True, max_width=MAX_CELL_WIDTH)
    table.add_column("Last import", no_wrap=True)
    for dataset in datasets:
        table.add_row(
            cell(dataset.get("name")),
            f"{dataset.get('items', 0):,}",
            cell(dataset.get("key")),
            cell(dataset.get("owner_username") or ("(shared)" if dataset.get("owner") is None else dataset["owner"])),
            ", ".join(cell(column.get("name")) for column in dataset.get("columns") or []),
            local_minute(dataset.get("last_import_at")),
        )
    console.print(table)


def print_facets(console: Console, body: dict[str, Any]) -> None:
    """Each facet as a small table: its values and counts, or its histogram's bins."""
    for facet in body.get("facets") or []:
        table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
        if "bins" in facet:
            title = f"{facet.get('column')}: {_count(facet.get('nulls'))} null, from {cell(facet.get('min'))} "
            title += f"to {cell(facet.get('max'))}"
            table.add_column("from", justify="right", no_wrap=True)
            table.add_column("to", justify="right", no_wrap=True)
            table.add_column("count", justify="right", no_wrap=True)
            for span in facet["bins"]:
                table.add_row(cell(span.get("from")), cell(span.get("to")), _count(span.get("count")))
        else:
            title = f"{facet.get('column')}: {_count(facet.get('distinct'))} distinct, "
            title += f"{_count(facet.get('nulls'))} null, {_count(facet.get('other'))} in other values"
            table.add_column("value", overflow="ellipsis", no_wrap=True, max_width=MAX_CELL_WIDTH)
            table.add_column("count", justify="right", no_wrap=True)
            for value in facet.get("values") or []:
                table.add_row(cell(value.get("value")), _count(value.get("count")))
        console.print(title)
        console.print(table)


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else cell(value)


def local_minute(timestamp: str | None) -> str:
    """An API timestamp (UTC, ISO 8601) in the user's own time zone, to the minute."""
    if not timestamp:
        return ""
    try:
        return datetime.fromisoformat(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return timestamp


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


def read_as(job: dict[str, Any]) -> str:
    r"""How the service reads the file: ``gzip, utf-8, quoting none, null \N, short rows error``."""
    parts = [] if job.get("compression") in (None, "none") else [job["compression"]]
    parts += [job.get("encoding") or "utf-8", f"quoting {job.get('quoting')}"]
    markers = job.get("null_markers") or []
    parts.append("null " + ", ".join(markers) if markers else "null only when empty")
    parts.append(f"short rows {job.get('ragged') or 'error'}")
    return ", ".join(parts)


REVERT_STATUSES = ("Reverting", "Reverted")


def print_job(console: Console, job: dict[str, Any]) -> None:
    """An import job as a short summary, its row errors listed under it."""
    console.print(f"Task      {job['task_id']}")
    console.print(f"Status    {job['status']} ({job.get('progress') or 0}%)")
    size = job.get("size_bytes")
    file_line = f"{job.get('filename')}" + (f" ({decimal(size)})" if isinstance(size, int) else "")
    console.print(f"File      {file_line}, mode {job.get('mode')}, key {job.get('key') or '(row hash)'}")
    if "encoding" in job:
        console.print(f"Read as   {read_as(job)}")
    console.print(f"Rows      {rows_summary(job)}")
    if job.get("paused_reason"):
        console.print(f"Paused    {job['paused_reason']}")
    for label, field in (
        ("Created", "created_at"),
        ("Started", "started_at"),
        ("Finished", "finished_at"),
        ("Reverted", "reverted_at"),
    ):
        if job.get(field):
            console.print(f"{label:<9} {job[field]}")
    if job.get("error"):
        console.print(f"Error     {job['error']}")
    print_row_errors(console, job)


def rows_summary(job: dict[str, Any]) -> str:
    counts = ", ".join(
        f"{job.get(f'rows_{name}') or 0:,} {name}" for name in ("inserted", "updated", "duplicate", "failed")
    )
    summary = f"{job.get('rows_processed') or 0:,} processed: {counts}; {job.get('warnings') or 0:,} warnings"
    if job.get("status") in REVERT_STATUSES:
        summary += f"; {revert_summary(job)}"
    return summary


def revert_summary(job: dict[str, Any]) -> str:
    if job.get("status") == "Reverting":
        return "reverting"
    return f"{job.get('rows_reverted') or 0:,} reverted, {job.get('rows_kept') or 0:,} kept"


def print_row_errors(console: Console, job: dict[str, Any]) -> None:
    errors = job.get("errors") or []
    if not errors:
        return
    failed = job.get("rows_failed") or len(errors)
    shown = f"first {len(errors)} of {failed:,}" if failed > len(errors) else f"{len(errors)}"
    console.print(f"Row errors ({shown}):")
    for error in errors:
        console.print(f"  line {error.get('line')}: {error.get('message')}")
