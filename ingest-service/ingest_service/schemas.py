"""Job states, upload options and the bodies of the ingest API."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from multidict import MultiMapping
from pydantic import BaseModel, ConfigDict, Field

from service_common.bodies import parse_model
from service_common.paging import QueryInt, single_values


class JobStatus(StrEnum):
    PENDING = "Pending"
    PROGRESS = "Progress"
    SUCCESS = "Success"
    FAILURE = "Failure"
    CANCELLED = "Cancelled"


ACTIVE_STATUSES = (JobStatus.PENDING, JobStatus.PROGRESS)


class ImportMode(StrEnum):
    INSERT = "insert"  # a row whose key exists already is skipped and counted as a duplicate
    UPSERT = "upsert"  # a row whose key exists already replaces that document's row


class UploadOptions(BaseModel):
    """The optional form fields sent beside the file."""

    model_config = ConfigDict(extra="ignore")

    mode: ImportMode = ImportMode.INSERT
    key: str | None = Field(None, min_length=1, max_length=256)


class PageQuery(BaseModel):
    """The seed's paging: ``offset`` is a 1-based page number, not a row count."""

    model_config = ConfigDict(extra="forbid")

    limit: QueryInt = Field(20, ge=1, le=100)
    offset: QueryInt = Field(1, ge=1)


def parse_page_query(params: MultiMapping[str]) -> PageQuery:
    """``limit`` and ``offset`` from a query string; a repeated or unknown parameter is a 400 naming it."""
    return parse_model(PageQuery, single_values(params, PageQuery.model_fields))


class RowErrorPublic(BaseModel):
    line: int
    message: str


class JobPublic(BaseModel):
    """``GET /fetch_csv_status/{task_id}``: what the uploader may know about an import job."""

    task_id: str
    status: JobStatus
    progress: int
    rows_processed: int
    rows_inserted: int
    rows_updated: int
    rows_duplicate: int
    rows_failed: int
    warnings: int
    errors: list[RowErrorPublic]
    filename: str
    size_bytes: int
    # How many times a worker started on the job: above 1 after a worker died or MongoDB was away.
    attempts: int
    mode: ImportMode
    key: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @classmethod
    def from_document(cls, job: dict[str, Any]) -> "JobPublic":
        return cls(task_id=job["_id"], **{name: job.get(name) for name in cls.model_fields if name != "task_id"})
