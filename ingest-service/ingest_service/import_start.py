"""Starting an import (``POST /upload_csv``, once the upload is received): the upload checked against
its dataset, the dataset created by its first import, the job stored and queued. Either all of it
happens, or nothing is left behind: not the upload, the job, nor a dataset this upload created.
"""

import logging
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from pymongo.asynchronous.database import AsyncDatabase

from ingest_service import storage
from ingest_service.producer import BrokerUnavailable, enqueue_import
from ingest_service.rows import default_key_column
from ingest_service.schemas import ImportMode
from ingest_service.settings import IngestSettings
from ingest_service.uploads import ReceivedUpload
from service_common.datasets import DatasetStatus, dataset_status, may_write, new_dataset_for
from service_common.errors import UNAVAILABLE, ApiError, bad_parameter
from service_common.roles import Role
from service_common.tokens import Claims

log = logging.getLogger(__name__)


async def start_import(
    db: AsyncDatabase, celery: Celery, settings: IngestSettings, claims: Claims, upload: ReceivedUpload
) -> dict[str, Any]:
    """The queued job that imports ``upload`` for ``claims``; its id is the upload's. A refusal is an
    ``ApiError`` (a 503 when the broker is down), raised once everything this upload stored is gone."""
    name, options, columns = upload.options.dataset, upload.options, upload.layout.columns
    created_dataset = job_stored = False
    try:
        dataset = await _writable_dataset(db, name, claims)
        _check_columns(columns, dataset, settings)
        if options.mode is ImportMode.MERGE and dataset is None:
            message = f"mode=merge sets columns on the items of an existing dataset; {name!r} has none yet"
            raise bad_parameter("mode", message, f"Invalid value for: mode ({message})")
        key = _key_column(options.key, columns, dataset)
        now = datetime.now(UTC)
        if dataset is None:
            await _check_dataset_quota(db, claims, settings)
            document = new_dataset_for(name, user_id=claims.user_id, username=claims.username, key=key, now=now)
            created_dataset = await storage.create_dataset(db, document)
            if not created_dataset:  # created by another upload meanwhile: its rules hold
                dataset = await _writable_dataset(db, name, claims)
                _check_key(dataset, key)
        job = storage.new_job(
            job_id=upload.file_id,
            dataset=name,
            owner=claims.user_id,
            owner_username=claims.username,
            filename=upload.filename,
            size_bytes=upload.size_bytes,
            layout=upload.layout,
            compression=upload.compression,
            null_markers=options.null_markers(upload.layout.quoting),
            ragged=options.ragged,
            mode=options.mode,
            key=key,
            now=now,
        )
        await storage.insert_job(db, job)
        job_stored = True
        await enqueue_import(celery, job["_id"])
    except BaseException as exc:
        if job_stored:
            await storage.delete_job(db, upload.file_id)
        await storage.delete_upload(db, upload.file_id)
        if created_dataset:
            await storage.delete_empty_dataset(db, name)
        if isinstance(exc, BrokerUnavailable):
            log.warning("Broker unavailable, upload %s withdrawn: %s", upload.file_id, exc)
            raise ApiError(503, UNAVAILABLE, headers={"Retry-After": "5"}) from None
        raise
    return job


async def _writable_dataset(db: AsyncDatabase, name: str, claims: Claims) -> dict[str, Any] | None:
    """The dataset ``claims`` may import into (None: there is none yet), or a 409 or 403 saying why not."""
    dataset = await storage.find_dataset(db, name)
    if dataset is None:
        return None
    if dataset_status(dataset) is not DatasetStatus.ACTIVE:
        raise ApiError(409, f"Dataset {name!r} is being deleted; upload again once it is gone")
    if not may_write(dataset, claims):
        raise ApiError(
            403,
            f"Only the owner of dataset {name!r} (or an admin) may write to it; "
            "upload to a dataset of your own with dataset=<name>",
        )
    return dataset


async def _check_dataset_quota(db: AsyncDatabase, claims: Claims, settings: IngestSettings) -> None:
    """A 403 when the account already owns as many datasets as it may (admins may own any number)."""
    limit = settings.max_datasets_per_user
    if claims.has_role(Role.ADMIN) or await storage.count_owned_datasets(db, claims.user_id, at_most=limit) < limit:
        return
    raise ApiError(
        403,
        f"You already own {limit} datasets, the most an account may (INGEST_MAX_DATASETS_PER_USER): "
        "delete one, or upload to one of yours",
    )


def _check_columns(columns: tuple[str, ...], dataset: dict[str, Any] | None, settings: IngestSettings) -> None:
    """The file's column names within their length, and the dataset's columns with the file's within their number."""
    limit = settings.max_column_name_chars
    if long := next((name for name in columns if len(name) > limit), None):
        message = f"Column name {long[:40]!r}... is longer than {limit} characters (INGEST_MAX_COLUMN_NAME_CHARS)"
        raise bad_parameter("file", message, message)
    known = {name for name, _ in (dataset or {}).get("column_types", [])}
    total = len(known | set(columns))
    if total > settings.max_columns:
        has = f"the dataset would have {total}" if known else f"the file has {total}"
        message = f"Too many columns: {has}, at most {settings.max_columns} are allowed (INGEST_MAX_COLUMNS)"
        raise bad_parameter("file", message, message)


def _check_key(dataset: dict[str, Any] | None, key: str | None) -> None:
    if dataset is None or dataset.get("key") == key:
        return
    theirs = repr(dataset["key"]) if dataset.get("key") else "no key column (rows keyed by content)"
    ours = repr(key) if key else "no key column"
    message = (
        f"Dataset {dataset['_id']!r} is keyed by {theirs}, this file by {ours}: pass key={dataset.get('key') or ''} "
        "if the file has that column, or upload it to a dataset of its own with dataset=<name>"
    )
    raise bad_parameter("key", message, f"Invalid value for: key ({message})")


def _key_column(requested: str | None, columns: tuple[str, ...], dataset: dict[str, Any] | None) -> str | None:
    if requested is None:
        if dataset is not None and dataset.get("key") in columns:
            return dataset["key"]  # an existing dataset keeps its key when the file has the column
        key = default_key_column(columns)
    elif requested not in columns:
        message = f"Column {requested!r} is not in the header row"
        raise bad_parameter("key", message, f"Invalid value for: key ({message})")
    else:
        key = requested
    _check_key(dataset, key)
    return key
