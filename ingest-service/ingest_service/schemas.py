"""Job states, upload options and the bodies of the ingest API."""

import codecs
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ingest_service.parsing import UTF8, Quoting
from ingest_service.rows import Ragged
from ingest_service.sources import Compression
from service_common.catalog_layout import DATASET_NAME, DEFAULT_DATASET
from service_common.datasets import job_dataset


class JobStatus(StrEnum):
    PENDING = "Pending"
    PROGRESS = "Progress"
    # Waiting, lease kept, for room on the store's volume (``paused_reason`` says how much); resumes by itself.
    PAUSED = "Paused"
    SUCCESS = "Success"
    FAILURE = "Failure"
    CANCELLED = "Cancelled"
    # An ended import being undone (``POST /uploads/{task_id}/revert``), then undone: never claimed by an import.
    REVERTING = "Reverting"
    REVERTED = "Reverted"


ACTIVE_STATUSES = (JobStatus.PENDING, JobStatus.PROGRESS, JobStatus.PAUSED)
# The active statuses a worker holds a lease in.
RUNNING_STATUSES = (JobStatus.PROGRESS, JobStatus.PAUSED)
# The statuses of an import that may be reverted: it has ended and was not reverted yet.
REVERTIBLE_STATUSES = (JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.CANCELLED)


IMDB_NULL = "\\N"


class ImportMode(StrEnum):
    INSERT = "insert"  # a row whose key exists already is skipped and counted as a duplicate
    UPSERT = "upsert"  # a row whose key exists already replaces that document's row
    MERGE = "merge"  # the file's columns are set on items that exist; no item is created


MAX_NULL_MARKERS = 16
MAX_NULL_MARKER_CHARS = 64


class UploadOptions(BaseModel):
    """The optional form fields sent beside the file."""

    model_config = ConfigDict(extra="forbid")

    mode: ImportMode = ImportMode.INSERT
    key: str | None = Field(None, min_length=1, max_length=256)
    dataset: str = Field(DEFAULT_DATASET, pattern=f"^{DATASET_NAME.pattern}$")
    # Any text codec Python knows, by any of its names; none: UTF-8, or UTF-16/32 by the file's BOM.
    encoding: str | None = Field(None, min_length=1, max_length=64)
    quoting: Quoting = Quoting.AUTO
    # Comma-separated missing-value markers (``\N,NA,NULL``); empty for none. Not given: ``\N`` for
    # a file read with quoting=none, none otherwise. An empty cell is always a missing value.
    null: list[str] | None = None
    ragged: Ragged = Ragged.ERROR

    @field_validator("encoding")
    @classmethod
    def _known_text_codec(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            codec = codecs.lookup(value)
        except LookupError:
            codec = None
        if codec is None or not codec._is_text_encoding:
            raise ValueError("Unknown text encoding: give a codec name such as utf-8, utf-16, cp1252 or latin-1")
        # utf-8-sig reads as utf-8 does here: a BOM at the start is dropped either way.
        return "utf-8" if codec.name == "utf-8-sig" else codec.name

    @field_validator("null", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        markers = [marker.strip() for marker in value.split(",")] if value.strip() else []
        if len(markers) > MAX_NULL_MARKERS:
            raise ValueError(f"At most {MAX_NULL_MARKERS} markers")
        if any(not marker or len(marker) > MAX_NULL_MARKER_CHARS for marker in markers):
            raise ValueError(f"Markers are separated by commas, each 1 to {MAX_NULL_MARKER_CHARS} characters")
        return list(dict.fromkeys(markers))

    def null_markers(self, quoting: Quoting) -> list[str]:
        """The markers given, or the default for the quoting the file is read with."""
        if self.null is not None:
            return self.null
        return [IMDB_NULL] if quoting is Quoting.NONE else []


class RowErrorPublic(BaseModel):
    line: int
    message: str


class JobPublic(BaseModel):
    """``GET /fetch_csv_status/{task_id}``: what the uploader (or an admin) may know about an import job."""

    task_id: str
    # The id of the user who uploaded the file.
    owner: str
    status: JobStatus
    progress: int
    rows_processed: int
    rows_inserted: int
    rows_updated: int
    rows_duplicate: int
    # mode=merge: rows whose key no item of the dataset has.
    rows_unmatched: int = 0
    rows_failed: int
    warnings: int
    errors: list[RowErrorPublic]
    filename: str
    size_bytes: int
    # How many times a worker started on the job: above 1 after a worker died or MongoDB was away.
    attempts: int
    mode: ImportMode
    key: str | None
    dataset: str
    # How the file is read: as given with the upload, or as found in its first bytes.
    compression: Compression = Compression.NONE
    encoding: str = UTF8
    quoting: Quoting = Quoting.RFC4180
    null_markers: list[str] = []
    ragged: Ragged = Ragged.ERROR
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    # A revert: the items it removed, and those it left (created by the import but changed since,
    # or updated in place by it: an upsert's or merge's earlier values are not brought back).
    rows_reverted: int = 0
    rows_kept: int = 0
    reverted_at: datetime | None = None
    # Why a ``Paused`` import waits: "the store's volume has N MB free; waiting for M MB". Null otherwise.
    paused_reason: str | None = None

    @classmethod
    def from_document(cls, job: dict[str, Any]) -> "JobPublic":
        # A field a job document lacks (one written before the field existed) takes its default.
        fields = {name: job[name] for name in cls.model_fields if name in job}
        fields["dataset"] = job_dataset(job)
        if job["status"] != JobStatus.PAUSED:
            # A worker that died while paused leaves its reason behind; the next run's claim does not clear it.
            fields["paused_reason"] = None
        return cls(task_id=job["_id"], **fields)
