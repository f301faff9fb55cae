"""Showing an upload and its import as they move: two progress bars in a terminal, plain lines elsewhere.

The commands talk to a ``ProgressView``; ``progress_view()`` picks the kind that
suits the output, so logs and pipes never receive cursor movements.
"""

import time
from collections.abc import Callable
from typing import Any, Protocol

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from catalog_cli.client import TERMINAL_STATUSES, ApiError, CatalogClient

POLL_INTERVAL = 0.5
# A watch outlives a gateway or service restart: answers like 502/503 are retried this long.
TRANSIENT_GRACE_SECONDS = 30.0
PLAIN_LINE_INTERVAL = 2.0


class ProgressView(Protocol):
    def upload_started(self, filename: str, size: int) -> None: ...
    def upload_advanced(self, sent: int) -> None: ...
    def upload_finished(self) -> None: ...
    def import_updated(self, status: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


def progress_view(console: Console) -> ProgressView:
    return RichProgressView(console) if console.is_terminal else PlainProgressView(console)


class RowRateColumn(ProgressColumn):
    """Rows imported per second since the import bar appeared."""

    def render(self, task: Task) -> Text:
        rows = task.fields.get("rows", 0)
        elapsed = task.elapsed or 0
        if not rows or elapsed <= 0:
            return Text("? rows/s", style="progress.data.speed")
        return Text(f"{rows / elapsed:,.0f} rows/s", style="progress.data.speed")


class RichProgressView:
    """Bytes sent, then rows imported, each bar with its rate and time remaining."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._upload: Progress | None = None
        self._upload_task = None
        self._import: Progress | None = None
        self._import_task = None
        self._paused_reason: str | None = None

    def upload_started(self, filename: str, size: int) -> None:
        self._upload = Progress(
            TextColumn("[bold]Uploading[/] {task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._upload_task = self._upload.add_task(filename, total=size)
        self._upload.start()

    def upload_advanced(self, sent: int) -> None:
        if self._upload is not None:
            self._upload.update(self._upload_task, completed=sent)

    def upload_finished(self) -> None:
        if self._upload is not None:
            task = self._upload.tasks[0]
            self._upload.update(self._upload_task, completed=task.total)
            self._upload.stop()
            self._upload = None

    def import_updated(self, status: dict[str, Any]) -> None:
        if self._import is None:
            self._import = Progress(
                TextColumn("[bold]Importing[/] {task.description:<9}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rows]:,} rows"),
                RowRateColumn(),
                TimeRemainingColumn(),
                console=self._console,
            )
            self._import_task = self._import.add_task(status["status"], total=100, rows=0)
            self._import.start()
        if status.get("paused_reason") and status["paused_reason"] != self._paused_reason:
            self._console.print(f"Paused: {status['paused_reason']}")
        self._paused_reason = status.get("paused_reason")
        self._import.update(
            self._import_task,
            description=status["status"],
            completed=status.get("progress") or 0,
            rows=status.get("rows_processed") or 0,
        )
        if status["status"] in TERMINAL_STATUSES:
            self.close()

    def close(self) -> None:
        for progress in (self._upload, self._import):
            if progress is not None:
                progress.stop()
        self._upload = self._import = None


class PlainProgressView:
    """One line per step, at most one every couple of seconds, for logs and pipes."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        self._console = console
        self._clock = clock
        self._size = 0
        self._last_line_at = 0.0
        self._last_status: tuple[Any, ...] | None = None

    def upload_started(self, filename: str, size: int) -> None:
        self._size = size
        self._last_line_at = self._clock()
        self._console.print(f"Uploading {filename} ({decimal(size)})")

    def upload_advanced(self, sent: int) -> None:
        if self._clock() - self._last_line_at >= PLAIN_LINE_INTERVAL and sent < self._size:
            self._last_line_at = self._clock()
            self._console.print(f"Uploaded {decimal(sent)} of {decimal(self._size)}")

    def upload_finished(self) -> None:
        self._console.print(f"Uploaded {decimal(self._size)}")

    def import_updated(self, status: dict[str, Any]) -> None:
        state = (status["status"], status.get("progress"), status.get("rows_processed"), status.get("paused_reason"))
        final = status["status"] in TERMINAL_STATUSES
        if state == self._last_status:
            return
        if not final and self._last_status and self._clock() - self._last_line_at < PLAIN_LINE_INTERVAL:
            return
        self._last_status = state
        self._last_line_at = self._clock()
        rows = status.get("rows_processed") or 0
        line = f"{status['status']}: {status.get('progress') or 0}%, {rows:,} rows processed"
        if status.get("paused_reason"):
            line += f" ({status['paused_reason']})"
        self._console.print(line)

    def close(self) -> None:
        pass


def watch_import(
    client: CatalogClient,
    task_id: str,
    on_status: Callable[[dict[str, Any]], None],
    *,
    interval: float = POLL_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Polls the job until it ends, handing every answer to ``on_status``; returns the last one."""
    failing_since: float | None = None
    while True:
        try:
            status = client.status(task_id)
        except ApiError as exc:
            transient = exc.status is None or exc.status in (429, 502, 503, 504)
            failing_since = failing_since or time.monotonic()
            if not transient or time.monotonic() - failing_since > TRANSIENT_GRACE_SECONDS:
                raise
            sleep(interval * 4)
            continue
        failing_since = None
        on_status(status)
        if status["status"] in TERMINAL_STATUSES:
            return status
        sleep(interval)
