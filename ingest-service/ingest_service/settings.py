from typing import ClassVar

from pydantic import Field

from ingest_service.parsing import MAX_ROW_BYTES
from service_common.settings import CommonSettings


class IngestSettings(CommonSettings):
    """Settings of both entry points: the upload API and the import worker."""

    required_in_production: ClassVar[tuple[str, ...]] = ("mongo_url", "redis_url", "jwks_url")

    port: int = Field(8002, validation_alias="INGEST_PORT")
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    jwks_url: str = Field("http://127.0.0.1:8001/.well-known/jwks.json", validation_alias="JWKS_URL")
    # The services the gateway's GET /readyz covers besides this one: it answers for the whole stack.
    auth_upstream: str = Field("127.0.0.1:8001", min_length=1, validation_alias="AUTH_UPSTREAM")
    catalog_upstream: str = Field("127.0.0.1:8003", min_length=1, validation_alias="CATALOG_UPSTREAM")
    max_upload_bytes: int = Field(1024**3, ge=1, validation_alias="INGEST_MAX_UPLOAD_BYTES")
    # A compressed upload may hold at most this many bytes once decompressed: past it, the import
    # ends as Failure (a gzip bomb does not fill the catalog). IMDB's largest file is about 4 GiB.
    max_decompressed_bytes: int = Field(16 * 1024**3, ge=1, validation_alias="INGEST_MAX_DECOMPRESSED_BYTES")
    # Bytes of the store's volume an upload takes per byte of CSV until its import ends: its GridFS copy
    # (1x) plus the catalog documents and their indexes (5-6x for the seed's columns, measured on the
    # embedded SecantusDB; see the README's "Disk space"). MongoDB compresses, so it may be set lower there.
    disk_expansion: float = Field(7.0, ge=1, le=100, validation_alias="INGEST_DISK_EXPANSION")
    # A dataset's columns, and the length of a column's name: past either, an upload is a 400 naming
    # the limit, so the dataset document (every column with its type and count) stays small.
    max_columns: int = Field(1000, ge=1, le=10_000, validation_alias="INGEST_MAX_COLUMNS")
    max_column_name_chars: int = Field(256, ge=1, le=4096, validation_alias="INGEST_MAX_COLUMN_NAME_CHARS")
    # The datasets one account may own (admins: any number); an upload that would create one more is refused.
    max_datasets_per_user: int = Field(100, ge=1, le=100_000, validation_alias="INGEST_MAX_DATASETS_PER_USER")
    batch_size: int = Field(1000, ge=1, le=10_000, validation_alias="INGEST_BATCH_SIZE")
    # Rows per batch of an upsert or merge (written in bulks and blocks of batch_size): the blocks its
    # updates touch are patched once per batch, and random keys touch most of a large dataset's blocks.
    in_place_batch_size: int = Field(10_000, ge=1, le=100_000, validation_alias="INGEST_IN_PLACE_BATCH_SIZE")
    # A batch is also cut once it holds this many bytes of the file (a record longer than that is a
    # batch of its own): a batch of long rows never takes a worker's memory, or its block, past a few rows.
    batch_bytes: int = Field(MAX_ROW_BYTES, ge=1024, le=MAX_ROW_BYTES, validation_alias="INGEST_BATCH_BYTES")
    queue: str = Field("ingest", min_length=1, validation_alias="INGEST_QUEUE")
    worker_concurrency: int = Field(1, ge=1, le=64, validation_alias="INGEST_WORKER_CONCURRENCY")
    # A job belongs to the worker that last renewed its lease (every batch); once the lease runs
    # out, a redelivered message may take the job over.
    job_lease_seconds: int = Field(60, ge=1, validation_alias="INGEST_JOB_LEASE_SECONDS")
    # With Redis as the broker, a message a dead worker had taken is delivered again only after
    # this many seconds. Longer imports are safe: the job lease turns the extra delivery into a no-op.
    visibility_timeout: int = Field(600, ge=1, validation_alias="INGEST_VISIBILITY_TIMEOUT")
    # How often Celery beat has a worker look for jobs whose worker vanished (lease run out, no
    # heartbeat): each is sent to the queue again, resuming at its checkpoint...
    stale_check_seconds: int = Field(60, ge=1, validation_alias="INGEST_STALE_CHECK_SECONDS")
    # ...at most this many times; abandoned once more, it ends as Failure rather than killing workers forever.
    max_requeues: int = Field(3, ge=0, validation_alias="INGEST_MAX_REQUEUES")
    # How many times the worker retries a job, with growing pauses, while MongoDB is unreachable.
    mongo_max_retries: int = Field(10, ge=0, validation_alias="INGEST_MONGO_MAX_RETRIES")
