"""The dataset rules: who owns a new dataset, who may write to or delete one, its status."""

from datetime import UTC, datetime

import pytest

from service_common.datasets import (
    DatasetStatus,
    dataset_status,
    job_dataset,
    may_delete,
    may_write,
    new_dataset_for,
)
from service_common.tokens import Claims

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def claims(user_id: str, *roles: str) -> Claims:
    return Claims(user_id=user_id, username=f"name-{user_id}", token_id=None, expires_at=0, roles=roles)


def test_a_new_dataset_is_its_uploader_s_and_the_default_one_nobody_s():
    mine = new_dataset_for("films", user_id="u1", username="ada", key="show_id", now=NOW)
    assert (mine["owner"], mine["owner_username"], mine["key"]) == ("u1", "ada", "show_id")
    assert dataset_status(mine) is DatasetStatus.ACTIVE
    shared = new_dataset_for("default", user_id="u1", username="ada", key="show_id", now=NOW)
    assert (shared["owner"], shared["owner_username"]) == (None, None)


@pytest.mark.parametrize(
    ("owner", "who", "writes", "deletes"),
    [
        ("u1", claims("u1", "editor"), True, True),
        ("u1", claims("u2", "editor"), False, False),
        ("u1", claims("u2", "admin"), True, True),
        (None, claims("u2", "editor"), True, False),
        (None, claims("u2", "admin"), True, False),
    ],
)
def test_the_owner_or_an_admin_writes_and_deletes_and_everyone_writes_the_shared_one(owner, who, writes, deletes):
    dataset = {"_id": "films", "owner": owner}
    assert (may_write(dataset, who), may_delete(dataset, who)) == (writes, deletes)


def test_a_dataset_without_a_status_is_active_and_a_job_without_a_dataset_imported_into_the_default():
    assert dataset_status({"_id": "old"}) is DatasetStatus.ACTIVE
    assert dataset_status({"_id": "going", "status": "deleting"}) is DatasetStatus.DELETING
    assert job_dataset({"_id": "job"}) == "default"
    assert job_dataset({"_id": "job", "dataset": "films"}) == "films"
