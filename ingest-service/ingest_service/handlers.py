"""Thin handlers: check the caller, parse, call one storage or domain function, shape the response."""

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ingest_service import storage
from ingest_service.disk import UploadRoom
from ingest_service.keys import SETTINGS
from ingest_service.producer import (
    CELERY,
    BrokerUnavailable,
    enqueue_dataset_deletion,
    enqueue_import,
    enqueue_revert,
)
from ingest_service.rows import default_key_column
from ingest_service.schemas import ACTIVE_STATUSES, ImportMode, JobPublic, JobStatus, UploadOptions
from ingest_service.settings import IngestSettings
from ingest_service.uploads import receive_upload
from service_common.bodies import parse_model
from service_common.catalog_layout import DEFAULT_DATASET, is_dataset_name
from service_common.disk import STORE_VOLUME
from service_common.errors import UNAVAILABLE, ApiError
from service_common.paging import link_header, page_links, parse_page_query
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
    db = request.app[MONGO_DB]
    settings = request.app[SETTINGS]
    job_id = str(uuid.uuid4())
    room = UploadRoom(request.app.get(STORE_VOLUME), db, settings.disk_expansion)
    upload = await receive_upload(request, db, file_id=job_id, max_bytes=settings.max_upload_bytes, room=room)
    created_dataset = False
    try:
        options = parse_model(UploadOptions, upload.options)
        # Off the event loop: decompressing, decoding and guessing a codec take some milliseconds of CPU.
        compression, layout = await asyncio.to_thread(
            upload.inspect, encoding=options.encoding, quoting=options.quoting
        )
        dataset = await storage.find_dataset(db, options.dataset)
        _check_may_write(dataset, options.dataset, claims)
        _check_columns(layout.columns, dataset, settings)
        if options.mode is ImportMode.MERGE and dataset is None:
            message = f"mode=merge sets columns on the items of an existing dataset; {options.dataset!r} has none yet"
            raise ApiError(400, f"Invalid value for: mode ({message})", details=[{"field": "mode", "message": message}])
        key = _key_column(options.key, layout.columns, dataset)
        now = datetime.now(UTC)
        if dataset is None:
            shared = options.dataset == DEFAULT_DATASET
            created_dataset = await storage.create_dataset(
                db,
                options.dataset,
                owner=None if shared else claims.user_id,
                owner_username=None if shared else claims.username,
                key=key,
                now=now,
            )
            if not created_dataset:  # created by another upload meanwhile: its rules hold
                dataset = await storage.find_dataset(db, options.dataset)
                _check_may_write(dataset, options.dataset, claims)
                _check_key(dataset, options.dataset, key)
        job = storage.new_job(
            job_id=job_id,
            dataset=options.dataset,
            owner=claims.user_id,
            filename=upload.filename,
            size_bytes=upload.size_bytes,
            layout=layout,
            compression=compression,
            null_markers=options.null_markers(layout.quoting),
            ragged=options.ragged,
            mode=options.mode,
            key=key,
            now=now,
        )
        await storage.insert_job(db, job)
    except BaseException:
        await storage.delete_upload(db, job_id)
        if created_dataset:
            await storage.delete_empty_dataset(db, options.dataset)
        raise
    try:
        await enqueue_import(request.app[CELERY], job_id)
    except BrokerUnavailable as exc:
        log.warning("Broker unavailable, upload %s withdrawn: %s", job_id, exc)
        await storage.delete_job(db, job_id)
        await storage.delete_upload(db, job_id)
        if created_dataset:
            await storage.delete_empty_dataset(db, options.dataset)
        raise ApiError(503, UNAVAILABLE, headers={"Retry-After": "5"}) from None
    log.info(
        "Upload %s queued: %s, %d bytes (%s, %s, quoting %s), dataset %s, mode %s, key %s",
        job_id,
        upload.filename,
        upload.size_bytes,
        compression,
        layout.encoding,
        layout.quoting,
        options.dataset,
        options.mode,
        key,
    )
    return web.json_response({"message": "CSV upload processing started", "task_id": job_id}, status=202)


def _check_may_write(dataset: dict[str, Any] | None, name: str, claims: Claims) -> None:
    """A dataset is written by its owner or an admin; the default one (no owner) by every editor."""
    if dataset is None:
        return
    if dataset.get("status", "active") != "active":
        raise ApiError(409, f"Dataset {name!r} is being deleted; upload again once it is gone")
    if dataset.get("owner") not in (None, claims.user_id) and not claims.has_role(Role.ADMIN):
        raise ApiError(
            403,
            f"Only the owner of dataset {name!r} (or an admin) may write to it; "
            "upload to a dataset of your own with dataset=<name>",
        )


def _check_columns(columns: tuple[str, ...], dataset: dict[str, Any] | None, settings: IngestSettings) -> None:
    """The file's column names within their length, and the dataset's columns with the file's within their number."""
    limit = settings.max_column_name_chars
    if long := next((name for name in columns if len(name) > limit), None):
        message = f"Column name {long[:40]!r}... is longer than {limit} characters (INGEST_MAX_COLUMN_NAME_CHARS)"
        raise ApiError(400, message, details=[{"field": "file", "message": message}])
    known = {name for name, _ in (dataset or {}).get("column_types", [])}
    total = len(known | set(columns))
    if total > settings.max_columns:
        has = f"the dataset would have {total}" if known else f"the file has {total}"
        message = f"Too many columns: {has}, at most {settings.max_columns} are allowed (INGEST_MAX_COLUMNS)"
        raise ApiError(400, message, details=[{"field": "file", "message": message}])


def _check_key(dataset: dict[str, Any] | None, name: str, key: str | None) -> None:
    if dataset is None or dataset.get("key") == key:
        return
    theirs = repr(dataset["key"]) if dataset.get("key") else "no key column (rows keyed by content)"
    ours = repr(key) if key else "no key column"
    message = (
        f"Dataset {name!r} is keyed by {theirs}, this file by {ours}: pass key={dataset.get('key') or ''} "
        "if the file has that column, or upload it to a dataset of its own with dataset=<name>"
    )
    raise ApiError(400, f"Invalid value for: key ({message})", details=[{"field": "key", "message": message}])


def _key_column(requested: str | None, columns: tuple[str, ...], dataset: dict[str, Any] | None = None) -> str | None:
    if requested is None:
        if dataset is not None and dataset.get("key") in columns:
            return dataset["key"]  # an existing dataset keeps its key when the file has the column
        key = default_key_column(columns)
    elif requested not in columns:
        message = f"Column {requested!r} is not in the header row"
        raise ApiError(400, f"Invalid value for: key ({message})", details=[{"field": "key", "message": message}])
    else:
        key = requested
    _check_key(dataset, dataset["_id"] if dataset else "", key)
    return key


async def delete_dataset(request: web.Request) -> web.Response:
    """Starts removing a dataset's items and layout in the background; its status reads ``deleting``
    (``GET /datasets/{name}``) until it is gone, and the name is free again."""
    claims = await require_role(request, Role.EDITOR)
    db = request.app[MONGO_DB]
    name = request.match_info["name"]
    dataset = await storage.find_dataset(db, name) if is_dataset_name(name) else None
    if dataset is None:
        raise ApiError(404, "No such dataset")
    if dataset.get("owner") is None or (dataset["owner"] != claims.user_id and not claims.has_role(Role.ADMIN)):
        rule = (
            "the shared default dataset cannot be deleted"
            if dataset.get("owner") is None
            else (f"only the owner of dataset {name!r} (or an admin) may delete it")
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
    return web.json_response({"message": "Dataset deletion started", "dataset": name, "status": "deleting"}, status=202)


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
    links = page_links(request, limit=page.limit, total=total, offset=page.offset)
    return web.json_response(body, headers={"X-Total-Count": str(total), "Link": link_header(links)})
