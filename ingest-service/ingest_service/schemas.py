"""Job states, upload options and the bodies of the ingest API."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from multidict import MultiMapping
from pydantic import BaseModel, ConfigDict, Field

from service_common.bodies import parse_model
from service_common.errors import ApiError
from service_common.paging import QueryInt

# Plain ASCII digits only: int() would also take " 5", "5_0", "+5" and non-ASCII digits.


class JobStatus(StrEnum):
    PENDING = "Pending"
    PROGRESS = "Progress"
    # Waiting, lease kept, for room on the store's volume (``paused_reason`` says how much); resumes by itself.
    PAUSED = "Paused"
    SUCCESS = "Success"
    FAILURE = "Failure"
    CANCELLED = "Cancelled"


ACTIVE_STATUSES = (JobStatus.PENDING, JobStatus.PROGRESS, JobStatus.PAUSED)
# The active statuses a worker holds a lease in.
RUNNING_STATUSES = (JobStatus.PROGRESS, JobStatus.PAUSED)


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

    model_config = ConfigDict(extra="ignore")

    limit: QueryInt = Field(20, ge=1, le=100)
    offset: QueryInt = Field(1, ge=1)


def parse_page_query(params: MultiMapping[str]) -> PageQuery:
    """``limit`` and ``offset`` from a query string; a repeated one is a 400, not a silent pick."""
    for name in ("limit", "offset"):
        if len(params.getall(name, [])) > 1:
            details = [{"field": name, "message": "Given more than once"}]
            raise ApiError(400, f"Parameter given more than once: {name}", details=details)
    return parse_model(PageQuery, {name: params[name] for name in ("limit", "offset") if name in params})


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
    # Why a ``Paused`` import waits: "the store's volume has N MB free; waiting for M MB". Null otherwise.
    paused_reason: str | None

    @classmethod
    def from_document(cls, job: dict[str, Any]) -> "JobPublic":
        fields = {name: job.get(name) for name in cls.model_fields if name != "task_id"}
        if job["status"] != JobStatus.PAUSED:
            # A worker that died while paused leaves its reason behind; the next run's claim does not clear it.
            fields["paused_reason"] = None
        return cls(task_id=job["_id"], **fields)
