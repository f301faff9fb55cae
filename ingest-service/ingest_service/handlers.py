"""Thin handlers: check the caller, parse, call one storage or domain function, shape the response."""

import logging
import uuid
from datetime import UTC, datetime

from aiohttp import web

from ingest_service import storage
from ingest_service.disk import UploadRoom
from ingest_service.import_start import start_import
from ingest_service.keys import SETTINGS
from ingest_service.producer import CELERY, BrokerUnavailable, enqueue_dataset_deletion, enqueue_revert
from ingest_service.schemas import ACTIVE_STATUSES, JobPublic, JobStatus
from ingest_service.uploads import receive_upload
from service_common.catalog_layout import is_dataset_name
from service_common.datasets import DatasetStatus, may_delete
from service_common.disk import STORE_VOLUME
from service_common.errors import UNAVAILABLE, ApiError
from service_common.paging import page_headers, parse_page_query
from service_common.roles import Role
from service_common.stores import MONGO_DB
from service_common.tokens import Claims, require_claims, require_role

log = logging.getLogger(__name__)

JOB_NOT_FOUND = "No such upload"


def _owner_filter(claims: Claims) -> str | None:
    """Whose jobs the caller may see and act on: an admin anyone's (None), everyone else their own."""
    return None if claims.has_role(Role.ADMIN) else claims.user_id


async def upload_csv(request: web.Request) -> web.Response:
    # Refused before a byte of the file is read: a viewer's upload costs nothing.
    claims = await require_role(request, Role.EDITOR)
    db, settings = request.app[MONGO_DB], request.app[SETTINGS]
    room = UploadRoom(request.app.get(STORE_VOLUME), db, settings.disk_expansion)
    upload = await receive_upload(
        request, db, file_id=str(uuid.uuid4()), max_bytes=settings.max_upload_bytes, room=room
    )
    job = await start_import(db, request.app[CELERY], settings, claims, upload)
    log.info(
        "Upload %s queued: %s, %d bytes (%s, %s, quoting %s), dataset %s, mode %s, key %s",
        job["_id"],
        upload.filename,
        upload.size_bytes,
        upload.compression,
        upload.layout.encoding,
        upload.layout.quoting,
        job["dataset"],
        upload.options.mode,
        job["key"],
    )
    return web.json_response({"message": "CSV upload processing started", "task_id": job["_id"]}, status=202)


async def delete_dataset(request: web.Request) -> web.Response:
    """Starts removing a dataset's items and layout in the background; its status reads ``deleting``
    (``GET /datasets/{name}``) until it is gone, and the name is free again."""
    claims = await require_role(request, Role.EDITOR)
    db = request.app[MONGO_DB]
    name = request.match_info["name"]
    dataset = await storage.find_dataset(db, name) if is_dataset_name(name) else None
    if dataset is None:
        raise ApiError(404, "No such dataset")
    if not may_delete(dataset, claims):
        rule = (
            "the shared default dataset cannot be deleted"
            if dataset.get("owner") is None
            else f"only the owner of dataset {name!r} (or an admin) may delete it"
        )
        raise ApiError(403, f"Not allowed: {rule}")
    if await storage.active_jobs_of_dataset(db, name):
        raise ApiError(409, f"Imports into dataset {name!r} are still running: cancel them or wait for them to end")
    if not await storage.mark_dataset_deleting(db, name, datetime.now(UTC)):
        raise ApiError(409, f"Dataset {name!r} is already being deleted")
    try:
        await enqueue_dataset_deletion(request.app[CELERY], name)
    except BrokerUnavailable:
        await storage.unmark_dataset_deleting(db, name)
        raise ApiError(503, UNAVAILABLE, headers={"Retry-After": "5"}) from None
    log.info("Dataset %s: deletion started by its owner", name)
    body = {"message": "Dataset deletion started", "dataset": name, "status": DatasetStatus.DELETING}
    return web.json_response(body, status=202)


def _task_id(request: web.Request) -> str:
    raw = request.match_info["task_id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ApiError(400, "Malformed task id: expected a UUID") from None


async def fetch_csv_status(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    job = await storage.find_job(request.app[MONGO_DB], _task_id(request), _owner_filter(claims))
    if job is None:
        raise ApiError(404, JOB_NOT_FOUND)
    return web.json_response(JobPublic.from_document(job).model_dump(mode="json"))


async def cancel_upload(request: web.Request) -> web.Response:
    claims = await require_role(request, Role.EDITOR)
    db = request.app[MONGO_DB]
    task_id = _task_id(request)
    owner = _owner_filter(claims)
    job, previous = await storage.cancel_job(db, task_id, owner, datetime.now(UTC))
    if job is None:
        existing = await storage.find_job(db, task_id, owner)
        if existing is None:
            raise ApiError(404, JOB_NOT_FOUND)
        raise ApiError(409, f"The upload has already ended ({existing['status']})")
    if previous is JobStatus.PENDING:
        # No worker has started on it, and none will: its file can go now.
        await storage.delete_upload(db, task_id)
    log.info("Upload %s cancelled by %s", task_id, "its owner" if job["owner"] == claims.user_id else "an admin")
    return web.json_response(JobPublic.from_document(job).model_dump(mode="json"))


async def revert_upload(request: web.Request) -> web.Response:
    """Starts undoing an ended import in the background: its status reads ``Reverting``, then ``Reverted``."""
    claims = await require_role(request, Role.EDITOR)
    db = request.app[MONGO_DB]
    task_id = _task_id(request)
    owner = _owner_filter(claims)
    job, previous = await storage.start_revert(db, task_id, owner, datetime.now(UTC))
    if job is None or previous is None:
        existing = await storage.find_job(db, task_id, owner)
        if existing is None:
            raise ApiError(404, JOB_NOT_FOUND)
        if existing["status"] in ACTIVE_STATUSES:
            raise ApiError(409, f"The upload is still running ({existing['status']}): cancel it or wait for it to end")
        raise ApiError(409, f"The upload has already been reverted ({existing['status']})")
    try:
        await enqueue_revert(request.app[CELERY], task_id)
    except BrokerUnavailable:
        await storage.undo_start_revert(db, task_id, previous)
        raise ApiError(503, UNAVAILABLE, headers={"Retry-After": "5"}) from None
    log.info("Upload %s: revert started by %s", task_id, "its owner" if job["owner"] == claims.user_id else "an admin")
    return web.json_response(JobPublic.from_document(job).model_dump(mode="json"), status=202)


async def list_uploads(request: web.Request) -> web.Response:
    claims = await require_claims(request)
    page = parse_page_query(request.query)
    jobs, total = await storage.list_jobs(
        request.app[MONGO_DB], _owner_filter(claims), skip=page.skip, limit=page.limit
    )
    body = [JobPublic.from_document(job).model_dump(mode="json") for job in jobs]
    return web.json_response(body, headers=page_headers(request, page, total=total))
