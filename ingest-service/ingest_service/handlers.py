"""Thin handlers: check the caller, parse, call one storage or domain function, shape the response."""

import logging
import uuid
from datetime import UTC, datetime

from aiohttp import web

from ingest_service import storage
from ingest_service.keys import SETTINGS
from ingest_service.producer import CELERY, BrokerUnavailable, enqueue_import
from ingest_service.rows import default_key_column
from ingest_service.schemas import JobPublic, JobStatus, UploadOptions, parse_page_query
from ingest_service.uploads import receive_upload
from service_common.bodies import parse_model
from service_common.errors import UNAVAILABLE, ApiError
from service_common.paging import link_header, page_links
from service_common.stores import MONGO_DB
from service_common.tokens import require_claims

log = logging.getLogger(__name__)

JOB_NOT_FOUND = "No such upload"


async def upload_csv(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    db = request.app[MONGO_DB]
    job_id = str(uuid.uuid4())
    upload = await receive_upload(request, db, file_id=job_id, max_bytes=request.app[SETTINGS].max_upload_bytes)
    try:
        options = parse_model(UploadOptions, upload.options)
        key = _key_column(options.key, upload.layout.columns)
        job = storage.new_job(
            job_id=job_id,
            owner=claims.user_id,
            filename=upload.filename,
            size_bytes=upload.size_bytes,
            layout=upload.layout,
            mode=options.mode,
            key=key,
            now=datetime.now(UTC),
        )
        await storage.insert_job(db, job)
    except BaseException:
        await storage.delete_upload(db, job_id)
        raise
    try:
        await enqueue_import(request.app[CELERY], job_id)
    except BrokerUnavailable as exc:
        log.warning("Broker unavailable, upload %s withdrawn: %s", job_id, exc)
        await storage.delete_job(db, job_id)
        await storage.delete_upload(db, job_id)
        raise ApiError(503, UNAVAILABLE, headers={"Retry-After": "5"}) from None
    log.info(
        "Upload %s queued: %s, %d bytes, mode %s, key %s", job_id, upload.filename, upload.size_bytes, options.mode, key
    )
    return web.json_response({"message": "CSV upload processing started", "task_id": job_id}, status=202)


def _key_column(requested: str | None, columns: tuple[str, ...]) -> str | None:
    if requested is None:
        return default_key_column(columns)
    if requested not in columns:
        message = f"Column {requested!r} is not in the header row"
        raise ApiError(400, f"Invalid value for: key ({message})", details=[{"field": "key", "message": message}])
    return requested


def _task_id(request: web.Request) -> str:
    raw = request.match_info["task_id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ApiError(400, "Malformed task id: expected a UUID") from None


async def fetch_csv_status(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    job = await storage.find_job(request.app[MONGO_DB], _task_id(request), claims.user_id)
    if job is None:
        raise ApiError(404, JOB_NOT_FOUND)
    return web.json_response(JobPublic.from_document(job).model_dump(mode="json"))


async def cancel_upload(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    db = request.app[MONGO_DB]
    task_id = _task_id(request)
    job, previous = await storage.cancel_job(db, task_id, claims.user_id, datetime.now(UTC))
    if job is None:
        existing = await storage.find_job(db, task_id, claims.user_id)
        if existing is None:
            raise ApiError(404, JOB_NOT_FOUND)
        raise ApiError(409, f"The upload has already ended ({existing['status']})")
    if previous is JobStatus.PENDING:
        # No worker has started on it, and none will: its file can go now.
        await storage.delete_upload(db, task_id)
    log.info("Upload %s cancelled by its owner", task_id)
    return web.json_response(JobPublic.from_document(job).model_dump(mode="json"))


async def list_uploads(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    page = parse_page_query(request.query)
    jobs, total = await storage.list_jobs(
        request.app[MONGO_DB], claims.user_id, skip=(page.offset - 1) * page.limit, limit=page.limit
    )
    body = [JobPublic.from_document(job).model_dump(mode="json") for job in jobs]
    links = page_links(request, limit=page.limit, total=total, offset=page.offset)
    return web.json_response(body, headers={"X-Total-Count": str(total), "Link": link_header(links)})
