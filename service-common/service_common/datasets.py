"""A dataset's rules, each written once: its status, who owns a new one, who may write to it or
delete it, and which dataset a job that names none imported into. Pure: no I/O.

ingest-service writes the dataset document (``catalog_layout.new_dataset`` gives its shape) and
applies these rules; catalog-service reads its status.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

# DatasetStatus is defined with the dataset document's shape (``new_dataset`` stores it); the rules'
# users import it from here.
from service_common.catalog_layout import DEFAULT_DATASET, DatasetStatus, new_dataset
from service_common.roles import Role
from service_common.tokens import Claims


def dataset_status(dataset: Mapping[str, Any]) -> DatasetStatus:
    # A dataset stored before deletions existed has no status, and is active.
    return DatasetStatus(dataset.get("status", DatasetStatus.ACTIVE))


def job_dataset(job: Mapping[str, Any]) -> str:
    """The dataset a job imports into: jobs from before datasets existed imported into what is now
    the default one."""
    return job.get("dataset") or DEFAULT_DATASET


def new_dataset_for(
    name: str, *, user_id: str | None, username: str | None, key: str | None, now: datetime
) -> dict[str, Any]:
    """The dataset the first import into ``name`` creates, whether its upload (the API) or its import
    (the worker, finding it gone) creates it: owned by the uploader, except ``default``, the seed's
    one catalog, which has no owner and is shared by every editor."""
    if name == DEFAULT_DATASET:
        user_id = username = None
    return new_dataset(name, owner=user_id, owner_username=username, key=key, now=now)


def _owner_or_admin(dataset: Mapping[str, Any], claims: Claims) -> bool:
    return dataset.get("owner") == claims.user_id or claims.has_role(Role.ADMIN)


def may_write(dataset: Mapping[str, Any], claims: Claims) -> bool:
    """Whether ``claims`` (an editor, ``require_role`` checked) may import into the dataset: its owner
    or an admin, and anyone into the shared one (no owner). Its status is the caller's to check."""
    return dataset.get("owner") is None or _owner_or_admin(dataset, claims)


def may_delete(dataset: Mapping[str, Any], claims: Claims) -> bool:
    """Whether ``claims`` may delete the dataset: its owner or an admin; the shared one, nobody."""
    return dataset.get("owner") is not None and _owner_or_admin(dataset, claims)
