"""The read model answers sorts, filters, ``q``, counts, facets and exports exactly as a scan of the
items would, after inserts, in-place updates and a revert; it is fresh, bounded in time, the same in
every process, and catches up by itself after a restart."""

import asyncio
import csv
import io
import json
import random
import time
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient
from yarl import URL

from catalog_service import projector, queries, storage
from catalog_service.index import CatalogIndex
from catalog_service.keys import READ_MODEL
from catalog_service.main import create_app
from catalog_service.projector import Projector
from catalog_service.read_model import ReadModel
from catalog_service.schemas import FilterOp
from catalog_testkit.paging import walk_pages_async
from catalog_testkit.polling import poll_async
from ingest_service.catalog_blocks import (
    append_items,
    audit,
    block_ids_of,
    insert_pending,
    item_document,
    pending_block,
    recover_job,
    refresh,
    revert_job,
)
from service_common.catalog_layout import DATASETS, ITEMS, new_dataset, public_row
from service_common.catalog_values import matches, stored_number
from tests.helpers import JOB_ID, bson_rank

DATASET = "mix"
OTHER_JOB = "00000000-0000-4000-8000-00000000000b"
CANCELLED_JOB = "00000000-0000-4000-8000-00000000000c"
TYPES = ["movie", "short", "tvSeries", "Movie", None]
WORDS = ["Love", "love", "War", "peace", "Ünïcode", "a.b*", "ß", "50% off", "a_b", "back\\slash"]
OPERATORS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "notin", "contains", "startswith", "endswith", "isnull", "has"]
COLUMNS = ["tconst", "titleType", "primaryTitle", "startYear", "rating", "genres", "note"]


def _row(rng: random.Random, n: int) -> dict[str, Any]:
    year: Any = rng.choice([1994, 1994, 2001, 1987, 2020, 1999])
    roll = rng.random()
    if roll < 0.1:
        year = None
    elif roll < 0.2:
        year = str(year)  # a year the file gave as text
    elif roll < 0.25:
        year = float(year) + 0.5
    row = {
        "tconst": f"tt{n:05d}",
        "titleType": rng.choice(TYPES),
        "primaryTitle": None if rng.random() < 0.05 else f"{rng.choice(WORDS)} {n % 13}",
        "startYear": year,
        "rating": None if rng.random() < 0.3 else round(rng.uniform(1, 10), 1),
        # A list column: items repeated, spaced, empty, a prefix of another ("Music", "Musical"), a number.
        "genres": rng.choice(["Drama", "Drama,Comedy", "Comedy", None, "Music, Musical", "Musical,,Drama,Musical", 7]),
    }
    if n % 17 == 0:
        del row["genres"]  # a file without that column
    if n % 23 == 0:
        row["note"] = "odd one"
    return row


def _store(db, rng: random.Random, numbers: range, *, job_id: str, block_size: int) -> None:
    now = datetime.now(UTC)
    documents = [
        item_document(
            DATASET, f"tt{n:05d}", seq=10_000 + n, block_id="", row=_row(rng, n), job_id=job_id, line=n, now=now
        )
        for n in numbers
    ]
    for start in range(0, len(documents), block_size):
        append_items(db, DATASET, job_id, documents[start : start + block_size], now)


@pytest.fixture
def mix(mongo_url, mongo_db_name) -> list[dict[str, Any]]:
    """A dataset with nulls, mixed types in one column, ties, rows updated in place (their blocks
    refreshed as the worker does), a reverted import and a cancelled one; returns its items as the store holds them."""
    rng = random.Random(11)
    with MongoClient(mongo_url, tz_aware=True) as client:
        db = client[mongo_db_name]
        now = datetime.now(UTC)
        db[DATASETS].insert_one(new_dataset(DATASET, owner=None, key="tconst", now=now))
        db[DATASETS].update_one({"_id": DATASET}, {"$set": {"column_types": [[c, "string"] for c in COLUMNS]}})
        _store(db, rng, range(0, 260), job_id=JOB_ID, block_size=40)
        _store(db, rng, range(260, 330), job_id=OTHER_JOB, block_size=30)
        # An upsert and a merge in place: values that sort and filter otherwise.
        changed = [f"tt{n:05d}" for n in range(0, 260, 9)]
        for key in changed:
            db[ITEMS].update_one(
                {"_id": f"{DATASET}:{key}"},
                {"$set": {"row.startYear": rng.choice([1994, "1994", None, 1850]), "row.titleType": "merged"}},
            )
        refresh(db, block_ids_of(db, DATASET, changed))
        revert_job(db, OTHER_JOB, dataset=DATASET, last_seq=10_000, rows_read=70)
        # A cancelled import: its last batch's block written pending, half of its items inserted (one
        # candidate a key the dataset already holds), then finished by the recovery that follows.
        documents = [
            item_document(DATASET, f"tt{n:05d}", seq=10_000 + n, block_id="", row=_row(rng, n), job_id=CANCELLED_JOB,
                          line=n, now=now)
            for n in range(400, 430)
        ] + [item_document(DATASET, "tt00003", seq=10_430, block_id="", row={"tconst": "tt00003"}, job_id=CANCELLED_JOB,
                           line=430, now=now)]  # fmt: skip
        block = pending_block(
            DATASET, CANCELLED_JOB, 10_400, [d["key"] for d in documents], [d["seq"] for d in documents],
            [d["row"] for d in documents], now,
        )  # fmt: skip
        insert_pending(db, block)
        db[ITEMS].insert_many([{**document, "block": block["_id"]} for document in documents[:15]])
        recover_job(db, CANCELLED_JOB)
        assert not audit(db, DATASET)
        return list(db[ITEMS].find({"dataset": DATASET}).sort("seq", 1))


def _holds(op: str, text: str, value: Any) -> bool:
    if op == "eq":
        return matches(text, value)
    if op == "ne":
        return not matches(text, value)
    if op in ("in", "notin"):
        found = any(matches(member, value) for member in text.split(","))
        return found if op == "in" else not found
    if op == "isnull":
        return (value is None) == (text == "true")
    if op == "has":
        return isinstance(value, str) and text in _items(value)
    if op in ("gt", "gte", "lt", "lte"):
        number = stored_number(text)
        if number is not None:
            if not isinstance(value, int | float):
                return False
            other: Any = number
        else:
            if not isinstance(value, str):
                return False
            other = text
        return {"gt": value > other, "gte": value >= other, "lt": value < other, "lte": value <= other}[op]
    if not isinstance(value, str):
        return False
    lower, wanted = value.lower(), text.lower()
    return {"contains": wanted in lower, "startswith": lower.startswith(wanted), "endswith": lower.endswith(wanted)}[op]


def _random_filter(rng: random.Random, rows: list[dict[str, Any]], column: str) -> tuple[str, str]:
    """An operator and a value for it, drawn from the column's values."""
    op = rng.choice(OPERATORS)
    sample = rng.choice(rows).get(column)
    text = "" if sample is None else str(sample)
    if op == "isnull":
        text = rng.choice(["true", "false"])
    elif op in ("in", "notin"):
        text = ",".join({text, str(rng.choice(rows).get(column) or "")})
    elif op == "has":
        text = rng.choice(["Drama", "Music", "Musical", "Comedy", "7"])
    elif op in ("contains", "startswith", "endswith"):
        text = (text or "love")[: rng.randint(1, 3)].upper()
    return op, text


def _random_query(rng: random.Random, items: list[dict[str, Any]]) -> tuple[dict[str, str], list]:
    rows = [public_row(item["row"]) for item in items]
    params: dict[str, str] = {}
    checks = []
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        column = rng.choice(["titleType", "startYear", "rating", "genres", "primaryTitle", "note"])
        op, text = _random_filter(rng, rows, column)
        if f"filter[{column}][{op}]" not in params:  # a parameter given twice: the request keeps one
            params[f"filter[{column}][{op}]"] = text
            checks.append((column, op, text))
    if rng.random() < 0.3:
        params["q"] = rng.choice(["LOVE", "war", "ü", "A.B*", "ss", "%", "_", "\\", "0% O"])
    if rng.random() < 0.8:
        params["sort"] = rng.choice(["", "-"]) + rng.choice(["startYear", "rating", "primaryTitle", "titleType", "id"])
    return params, checks


def _expected(items: list[dict[str, Any]], params: dict[str, str], checks: list) -> list[str]:
    chosen = []
    for item in items:
        row = public_row(item["row"])
        if not all(_holds(op, text, row.get(column)) for column, op, text in checks):
            continue
        if "q" in params:
            title = row.get("primaryTitle")
            if not isinstance(title, str) or params["q"].lower() not in title.lower():
                continue
        chosen.append(item)
    sort = params.get("sort")
    if sort:
        column, descending = sort.lstrip("-"), sort.startswith("-")

        def key(item: dict[str, Any]) -> tuple:
            value = item["key"] if column == "id" else public_row(item["row"]).get(column)
            return (bson_rank(value), item["seq"])

        chosen.sort(key=key, reverse=descending)
    return [item["key"] for item in chosen]


async def _walk(client: TestClient, params: dict[str, str]) -> tuple[list[str], int]:
    """Every page by cursor: the keys in order, and X-Total-Count (one value all along)."""
    walked = await walk_pages_async(client, URL("/datasets/mix/contents").with_query({**params, "limit": "23"}))
    assert len(walked.totals) == 1, (params, walked.totals)
    return walked.ids("tconst"), int(walked.totals.pop())


async def caught_up(client: TestClient) -> TestClient:
    """Waits, as a client would on a 503 with Retry-After, for the read model to have the dataset."""
    response = await poll_async(
        lambda: client.get("/datasets/mix/contents?sort=tconst&limit=1"),
        lambda response: response.status != 503,
        within=30,
        what="the read model catching up",
        interval=0.1,
    )
    assert response.status == 200
    return client


@pytest.fixture
async def mix_client(settings, mix):
    async with TestClient(TestServer(create_app(settings))) as client:
        yield await caught_up(client)


async def test_random_queries_answer_exactly_what_a_scan_of_the_items_gives(mix_client, mix):
    rng = random.Random(5)
    for _ in range(40):
        params, checks = _random_query(rng, mix)
        wanted = _expected(mix, params, checks)
        seen, total = await _walk(mix_client, params)
        assert seen == wanted, params
        assert total == len(wanted), params
        # An offset page is the same slice.
        response = await mix_client.get(URL("/datasets/mix/contents").with_query({**params, "limit": 5, "offset": 2}))
        assert [item["tconst"] for item in await response.json()] == wanted[5:10], params


SORTS = [sign + column for column in ("startYear", "rating", "primaryTitle", "titleType", "id", "genres", "note")
         for sign in ("", "-")]  # fmt: skip


def _found_by(monkeypatch, name: str) -> list[bool]:
    """Records, for each call of ``queries.<name>`` (a derived table's lookup), whether it found one."""
    used: list[bool] = []
    lookup = getattr(queries, name)

    def recorded(*args, **kwargs):
        found = lookup(*args, **kwargs)
        used.append(found is not None)
        return found

    monkeypatch.setattr(queries, name, recorded)
    return used


async def _orders_kept(client: TestClient, columns: set[str]) -> None:
    """Waits until the read model holds a current order table of each of these columns."""
    model = client.app[READ_MODEL]
    table = model.tables[DATASET]
    wanted = {queries.order_column(table, column) for column in columns}

    async def current() -> set[str]:
        return {chosen for chosen, fresh in (await asyncio.to_thread(model.orders, DATASET)).items() if fresh}

    await poll_async(current, wanted.issubset, within=30, what="the order tables built", interval=0.1)


async def test_sorted_pages_from_order_tables_answer_exactly_at_any_depth_and_after_a_change(
    settings, mix, monkeypatch, mongo_url, mongo_db_name
):
    monkeypatch.setattr(projector, "ORDER_SETTLE_SECONDS", 0)
    used = _found_by(monkeypatch, "ordered_page")
    async with TestClient(TestServer(create_app(settings))) as client:
        await caught_up(client)
        for sort in SORTS:  # each asks for its column's order table
            assert (await client.get(f"/datasets/mix/contents?sort={sort}&limit=1")).status == 200
        await _orders_kept(client, {sort.lstrip("-") for sort in SORTS})
        used.clear()
        for sort in SORTS:
            wanted = _expected(mix, {"sort": sort}, [])
            assert await _walk(client, {"sort": sort}) == (wanted, len(wanted)), sort
            for page in (1, 3, 12):
                response = await client.get(URL("/datasets/mix/contents").with_query(sort=sort, limit=7, offset=page))
                assert [item["tconst"] for item in await response.json()] == wanted[7 * (page - 1) : 7 * page], sort
        assert used and all(used)  # every page came from an order table

        # A change the order tables do not hold yet: answered from the rows as they are, then kept again.
        with MongoClient(mongo_url, tz_aware=True) as store:
            db = store[mongo_db_name]
            db[ITEMS].update_one({"_id": "mix:tt00002"}, {"$set": {"row.rating": 0.5, "row.primaryTitle": "Aaa"}})
            refresh(db, block_ids_of(db, DATASET, ["tt00002"]))
            items = list(db[ITEMS].find({"dataset": DATASET}).sort("seq", 1))
        for sort in ("rating", "-rating", "primaryTitle"):
            response = await client.get(f"/datasets/mix/contents?sort={sort}&limit=50")
            assert [item["tconst"] for item in await response.json()] == _expected(items, {"sort": sort}, [])[:50]
        await _orders_kept(client, {"rating", "primaryTitle"})
        used.clear()
        for sort in ("rating", "-rating", "primaryTitle"):
            wanted = _expected(items, {"sort": sort}, [])
            assert await _walk(client, {"sort": sort}) == (wanted, len(wanted)), sort
        assert used and all(used)


def _facet_expected(items: list[dict[str, Any]], column: str, size: int, *, split: bool = False) -> dict[str, Any]:
    """A facet computed by brute force; ``split``: a list column, each item of a cell counted once."""
    counts: dict[tuple, list] = {}
    nulls = 0
    for item in items:
        value = public_row(item["row"]).get(column)
        if value is None:
            nulls += 1
            continue
        for part in _items(value) if split and isinstance(value, str) else [value]:
            marker = bson_rank(float(part) if isinstance(part, int | float) else part)
            counts.setdefault(marker, [part, 0])[1] += 1
    ordered = sorted(counts.items(), key=lambda pair: (-pair[1][1], pair[0]))
    values = [{"value": value, "count": count} for _, (value, count) in ordered[:size]]
    counted = sum(count for _, count in counts.values()) if split else len(items) - nulls
    facet = {
        "column": column,
        "values": values,
        "nulls": nulls,
        "other": counted - sum(v["count"] for v in values),
        "distinct": len(counts),
    }
    return {**facet, "split": True} if split else facet


async def test_facets_count_every_value_exactly_under_the_filters(mix_client, mix):
    rng = random.Random(8)
    for _ in range(15):
        params, checks = _random_query(rng, mix)
        params.pop("sort", None)
        selected = {key for key in _expected(mix, params, checks)}
        chosen = [item for item in mix if item["key"] in selected]
        query = URL("/datasets/mix/facets").with_query(
            [*params.items(), ("facet", "titleType"), ("facet", "startYear"), ("facet", "genres"), ("facet_size", "3")]
        )
        response = await mix_client.get(query)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["total"] == len(chosen)
        for facet in body["facets"]:
            expected = _facet_expected(chosen, facet["column"], 3)
            # A number the file gave as an integer reads back as one; 1994.5 stays a float.
            assert facet == expected, (params, facet["column"])


async def _counts_kept(client: TestClient, wanted: set[tuple[str, bool]]) -> None:
    """Waits until the read model holds a current count table of each (column, split)."""
    model = client.app[READ_MODEL]
    table = model.tables[DATASET]
    wanted = {(queries.order_column(table, column), split) for column, split in wanted}
    deadline = time.monotonic() + 30
    while not wanted <= {key for key, fresh in (await asyncio.to_thread(model.counts, DATASET)).items() if fresh}:
        assert time.monotonic() < deadline, "the count tables were not built"
        await asyncio.sleep(0.1)


async def _whole_facets_exact(client: TestClient, items: list[dict[str, Any]], size: int) -> None:
    """Facets of the whole dataset, each of another size or bins than before (so not a kept answer)."""
    for column in ("titleType", "startYear", "rating", "genres", "note"):
        response = await client.get(f"/datasets/mix/facets?facet={column}&facet_size={size}")
        assert (await response.json())["facets"] == [_facet_expected(items, column, size)], column
    response = await client.get(f"/datasets/mix/facets?facet=genres&facet_split=genres&facet_size={size}")
    assert (await response.json())["facets"] == [_facet_expected(items, "genres", size, split=True)]
    for bins in (size, size + 5):
        await _check_histogram(client, items, bins)


async def test_facets_of_the_whole_dataset_from_count_tables_are_exact_and_after_a_change(
    settings, mix, monkeypatch, mongo_url, mongo_db_name
):
    monkeypatch.setattr(projector, "ORDER_SETTLE_SECONDS", 0)
    used = _found_by(monkeypatch, "_kept_counts")
    async with TestClient(TestServer(create_app(settings))) as client:
        await caught_up(client)
        await _whole_facets_exact(client, mix, 3)  # the split one asks for its count table
        charted = {(column, False) for column in ("titleType", "startYear", "rating", "genres", "note")}
        await _counts_kept(client, charted | {("genres", True)})
        # Not the key: a value per row, nothing to count.
        kept = await asyncio.to_thread(client.app[READ_MODEL].counts, DATASET)
        table = client.app[READ_MODEL].tables[DATASET]
        assert queries.order_column(table, "tconst") not in {c for c, _ in kept}
        used.clear()
        await _whole_facets_exact(client, mix, 4)
        assert used and all(used)  # every facet came from a count table

        # A change the count tables do not hold yet (not rebuilt until the rows settle): answered from
        # the rows as they are, then kept again.
        monkeypatch.setattr(projector, "ORDER_SETTLE_SECONDS", 3600)
        with MongoClient(mongo_url, tz_aware=True) as store:
            db = store[mongo_db_name]
            db[ITEMS].update_one(
                {"_id": "mix:tt00002"}, {"$set": {"row.rating": 99.5, "row.titleType": "new", "row.genres": "X,Y"}}
            )
            refresh(db, block_ids_of(db, DATASET, ["tt00002"]))
            items = list(db[ITEMS].find({"dataset": DATASET}).sort("seq", 1))
        used.clear()
        await _whole_facets_exact(client, items, 5)
        assert used and not any(used)
        monkeypatch.setattr(projector, "ORDER_SETTLE_SECONDS", 0)
        await _counts_kept(client, charted | {("genres", True)})
        used.clear()
        await _whole_facets_exact(client, items, 6)
        assert used and all(used)


async def test_the_count_of_filters_and_q_on_one_column_is_summed_from_its_count_table_exactly(
    settings, mix, monkeypatch
):
    """And the page follows from it: a page past the last match (none, for a search that finds
    nothing) is answered empty without scanning the rows; a page of few matches reads them by
    ``seq`` from the count table's lists, in any order, by offset or by cursor."""
    monkeypatch.setattr(projector, "ORDER_SETTLE_SECONDS", 0)
    used = _found_by(monkeypatch, "_current_counts")
    scans: list[int] = []  # a page's scan of the rows, run after its count
    fetch_page = queries.fetch_page
    monkeypatch.setattr(queries, "fetch_page", lambda *args: scans.append(1) or fetch_page(*args))
    by_seq: list[int] = []  # the pages read by seq
    read_by_seq = queries.by_seq
    monkeypatch.setattr(queries, "by_seq", lambda seqs: by_seq.append(len(seqs)) or read_by_seq(seqs))
    rng = random.Random(11)
    columns = ("titleType", "startYear", "rating", "genres", "note", "primaryTitle")
    rows = [public_row(item["row"]) for item in mix]
    counted = empty = listed = 0
    async with TestClient(TestServer(create_app(settings))) as client:
        await caught_up(client)
        await _counts_kept(client, {(column, False) for column in columns})
        for _ in range(80):
            # The count tables list the rows of every value (each held by at most 10,000 rows); a
            # selection of at most this many rows is read by them.
            threshold = rng.choice([0, 5, 40, 10_000])
            monkeypatch.setattr(queries, "LISTED_ROWS", threshold)
            column = rng.choice(columns)
            params, checks = {}, []
            searched = column == "primaryTitle" and rng.random() < 0.5  # q searches it
            for _ in range(rng.choice([0, 1, 2] if searched else [1, 1, 2])):  # two: a range, or eq and ne
                op, text = _random_filter(rng, rows, column)
                if f"filter[{column}][{op}]" not in params:
                    params[f"filter[{column}][{op}]"] = text
                    checks.append((column, op, text))
            if searched:
                params["q"] = rng.choice(["LOVE", "war", "ü", "A.B*", "ss", "%", "_", "\\", "0% O", "no such title"])
            if rng.random() < 0.4:
                params["sort"] = rng.choice(["", "-"]) + rng.choice(["startYear", "primaryTitle", "titleType", "id"])
            expected = _expected(mix, params, checks)
            page = rng.choice([1, 1, 2, 40])  # the count first: past the last match, no page is scanned
            used.clear()
            scans.clear()
            by_seq.clear()
            response = await client.get(
                URL("/datasets/mix/contents").with_query({**params, "limit": 3, "offset": page})
            )
            assert response.status == 200, (params, await response.text())
            assert int(response.headers["X-Total-Count"]) == len(expected), params
            assert [item["tconst"] for item in await response.json()] == expected[3 * (page - 1) : 3 * page], params
            assert all(used), params  # counted on the count table, not by a scan (or a kept answer)
            assert bool(scans) == (len(expected) > 3 * (page - 1)), params
            if scans:
                assert bool(by_seq) == (len(expected) <= threshold), (params, threshold)
            if by_seq and "sort" in params:  # every page by cursor, read by seq as well
                assert await _walk(client, params) == (expected, len(expected)), params
            counted += len(used)
            empty += not scans
            listed += bool(by_seq)
        assert counted >= 40 and empty >= 5 and listed >= 10


def test_a_text_match_on_lowered_text_selects_what_ilike_selects_in_any_script():
    """Count tables match ``q`` and the text filters on their lowered text; the engine's ILIKE over the
    text itself must select the same values, whatever the script (final sigma, dotted capital I,
    German sharp s, title-case digraphs, ligatures, combining marks, the LIKE wildcards)."""
    rng = random.Random(5)
    alphabet = (
        "aAzZ \u0130\u0131iI\u00df\u1e9e\u03a3\u03c3\u03c2\u01c5\u01c4\u01c6\u2126\u03c9\u03a9Kk\u212a"
        "\u00c5\u00e5\u212b%_\\\u0307\u00e9\u0301\ufb01\ufb03\U0001d400\u01f0"
    )
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(3000)]
    engine = duckdb.connect()
    engine.execute("CREATE TABLE t (k UTINYINT, n DOUBLE, s VARCHAR, ls VARCHAR)")
    engine.executemany("INSERT INTO t VALUES (2, NULL, ?, lower(?))", [[text, text] for text in texts])
    plain = queries.Column("k", "n", "s")
    for _ in range(200):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 2)))
        for op in (FilterOp.CONTAINS, FilterOp.STARTSWITH, FilterOp.ENDSWITH):
            counts = [
                engine.execute(f"SELECT count(*) FROM t WHERE {sql}", parameters).fetchone()[0]
                for sql, parameters in (
                    queries._text_match(plain, op, value),
                    queries._text_match(queries.COUNTED, op, value),
                )
            ]
            assert counts[0] == counts[1], (value, op)


def _items(text: str) -> list[str]:
    """A list cell's distinct items, as ``filter[][has]`` and ``facet_split`` read them."""
    return list(dict.fromkeys(item.strip(" ") for item in text.split(",") if item.strip(" ")))


async def test_a_split_facet_counts_each_item_once_per_row_exactly_under_the_filters(mix_client, mix):
    rng = random.Random(21)
    for _ in range(15):
        params, checks = _random_query(rng, mix)
        params.pop("sort", None)
        selected = set(_expected(mix, params, checks))
        chosen = [item for item in mix if item["key"] in selected]
        for size in (2, 10):
            query = URL("/datasets/mix/facets").with_query(
                [*params.items(), ("facet", "genres"), ("facet_split", "genres"), ("facet_size", str(size))]
            )
            response = await mix_client.get(query)
            assert response.status == 200, await response.text()
            body = await response.json()
            assert body["total"] == len(chosen), params
            assert body["facets"] == [_facet_expected(chosen, "genres", size, split=True)], params
    # Each listed item, used as a has filter, selects exactly the rows counted for it.
    body = await (await mix_client.get("/datasets/mix/facets?facet=genres&facet_split=genres&facet_size=10")).json()
    for value in body["facets"][0]["values"]:
        if isinstance(value["value"], str):
            response = await mix_client.get(
                URL("/datasets/mix/contents").with_query({"filter[genres][has]": value["value"]})
            )
            assert int(response.headers["X-Total-Count"]) == value["count"], value


async def test_a_histogram_covers_every_number_of_a_numeric_column(mix_client, mix):
    for bins in (4, 7, 20):
        await _check_histogram(mix_client, mix, bins)


async def _check_histogram(mix_client, mix, bins: int) -> None:
    response = await mix_client.get(f"/datasets/mix/facets?facet=rating&facet_bins={bins}")
    (facet,) = (await response.json())["facets"]
    ratings = [public_row(item["row"]).get("rating") for item in mix]
    numbers = [value for value in ratings if value is not None]
    assert facet["min"] == min(numbers) and facet["max"] == max(numbers)
    assert [b["count"] for b in facet["bins"]] and sum(b["count"] for b in facet["bins"]) == len(numbers)
    assert facet["nulls"] == ratings.count(None)
    for index, bin_ in enumerate(facet["bins"]):
        last = index == len(facet["bins"]) - 1
        inside = [v for v in numbers if bin_["from"] <= v and (v < bin_["to"] or (last and v == bin_["to"]))]
        assert bin_["count"] == len(inside)
        # The bin as filters: exactly its count, whatever the rounding of its edges.
        upper = "lte" if last else "lt"
        query = {"filter[rating][gte]": str(bin_["from"]), f"filter[rating][{upper}]": str(bin_["to"])}
        response = await mix_client.get(URL("/datasets/mix/contents").with_query(query))
        assert int(response.headers["X-Total-Count"]) == bin_["count"]


async def test_the_export_streams_every_selected_row_in_order_as_ndjson_and_csv(mix_client, mix):
    params = {"filter[startYear][gte]": "1990", "sort": "-rating"}
    wanted = _expected(mix, params, [("startYear", "gte", "1990")])
    response = await mix_client.get(URL("/datasets/mix/export").with_query({**params, "format": "ndjson"}))
    assert response.status == 200
    lines = (await response.text()).splitlines()
    assert [json.loads(line)["tconst"] for line in lines] == wanted

    response = await mix_client.get(URL("/datasets/mix/export").with_query(params))
    assert response.headers["Content-Type"].startswith("text/csv")
    records = list(csv.reader(io.StringIO(await response.text())))
    assert records[0] == COLUMNS
    by_key = {item["key"]: public_row(item["row"]) for item in mix}
    assert [record[0] for record in records[1:]] == wanted
    for record in records[1:]:
        row = by_key[record[0]]
        assert record == ["" if row.get(c) is None else str(row[c]) for c in COLUMNS]


@pytest.mark.parametrize("chunk_rows", [5_000, 7])
async def test_an_export_in_import_order_streams_every_selected_row_in_order_a_range_of_blocks_at_a_time(
    mix_client, mix, monkeypatch, mongo_url, mongo_db_name, chunk_rows
):
    monkeypatch.setattr(queries, "EXPORT_CHUNK_ROWS", chunk_rows)  # many chunks: ranges widen and narrow
    # A block changed after the table was built: its rows are written again, after every other block's.
    with MongoClient(mongo_url, tz_aware=True) as store:
        db = store[mongo_db_name]
        db[ITEMS].update_one({"_id": "mix:tt00045"}, {"$set": {"row.note": "changed"}})
        refresh(db, block_ids_of(db, DATASET, ["tt00045"]))
        items = list(db[ITEMS].find({"dataset": DATASET}).sort("seq", 1))
    for params, checks in [
        ({}, []),
        ({"filter[titleType]": "short"}, [("titleType", "eq", "short")]),
        ({"q": "love"}, []),
    ]:
        response = await mix_client.get(URL("/datasets/mix/export").with_query({**params, "format": "ndjson"}))
        assert response.status == 200
        exported = [json.loads(line) for line in (await response.text()).splitlines()]
        wanted = _expected(items, params, checks)
        assert [row["tconst"] for row in exported] == wanted, params
        if not params:
            assert next(row for row in exported if row["tconst"] == "tt00045")["note"] == "changed"


async def test_a_new_import_is_in_every_answer_once_the_store_holds_it(mix_client, mix, mongo_url, mongo_db_name):
    before = await mix_client.get("/datasets/mix/contents?sort=-rating&limit=1")
    assert before.status == 200
    with MongoClient(mongo_url, tz_aware=True) as client:
        now = datetime.now(UTC)
        row = {"tconst": "tt99999", "titleType": "new", "rating": 11.5}
        document = item_document(DATASET, "tt99999", seq=99_999, block_id="", row=row, job_id=JOB_ID, line=2, now=now)
        append_items(client[mongo_db_name], DATASET, JOB_ID, [document], now)

    after = await mix_client.get("/datasets/mix/contents?sort=-rating&limit=1")
    assert [item["tconst"] for item in await after.json()] == ["tt99999"]
    assert int(after.headers["X-Total-Count"]) == len(mix) + 1
    facets = await (await mix_client.get("/datasets/mix/facets?facet=titleType&filter[titleType]=new")).json()
    assert facets["facets"][0]["values"] == [{"value": "new", "count": 1}]


async def test_two_processes_answer_the_same(settings, mix):
    query = "/datasets/mix/contents?sort=primaryTitle&filter[startYear][lt]=2000&limit=50"
    answers = []
    for _ in range(2):
        async with TestClient(TestServer(create_app(settings))) as client:
            response = await (await caught_up(client)).get(query)
            answers.append((await response.json(), response.headers["X-Total-Count"]))
    assert answers[0] == answers[1]


async def test_a_restarted_process_catches_up_from_its_own_file(settings_for, mix, mongo_url, mongo_db_name, tmp_path):
    settings = settings_for(read_model_dir=tmp_path)
    async with TestClient(TestServer(create_app(settings))) as client:
        await caught_up(client)
    assert list(tmp_path.glob("*.duckdb"))
    with MongoClient(mongo_url, tz_aware=True) as client:
        db = client[mongo_db_name]
        db[ITEMS].update_one({"_id": "mix:tt00001"}, {"$set": {"row.rating": 99.5}})
        refresh(db, block_ids_of(db, DATASET, ["tt00001"]))
    async with TestClient(TestServer(create_app(settings))) as client:
        response = await client.get("/datasets/mix/contents?sort=-rating&limit=1")
        assert [item["tconst"] for item in await response.json()] == ["tt00001"]


async def test_count_tables_written_before_they_listed_their_rows_are_rebuilt_with_them(
    settings_for, mix, monkeypatch, tmp_path
):
    """A read model file from before count tables kept each value's rows: its count tables are not
    current once the process starts again (the scan answers meanwhile), and are rebuilt with them."""
    monkeypatch.setattr(projector, "ORDER_SETTLE_SECONDS", 0)
    settings = settings_for(read_model_dir=tmp_path)
    async with TestClient(TestServer(create_app(settings))) as client:
        await caught_up(client)
        await _counts_kept(client, {("primaryTitle", False)})
    (path,) = tmp_path.glob("*.duckdb")
    with duckdb.connect(str(path)) as engine:
        listing = engine.execute("SELECT table_name FROM duckdb_columns() WHERE column_name = 'seqs'").fetchall()
        for (counts,) in listing:
            engine.execute(f"ALTER TABLE {counts} DROP COLUMN seqs")
    opened = ReadModel(path, memory_limit="256MB", threads=1, max_queries=1)
    assert opened.counts(DATASET) == {}
    opened.close()
    by_seq: list[int] = []
    read_by_seq = queries.by_seq
    monkeypatch.setattr(queries, "by_seq", lambda seqs: by_seq.append(len(seqs)) or read_by_seq(seqs))
    expected = _expected(mix, {"q": "war"}, [])
    async with TestClient(TestServer(create_app(settings))) as client:
        await caught_up(client)
        await _counts_kept(client, {("primaryTitle", False)})
        response = await client.get("/datasets/mix/contents?q=war&limit=100")
        assert [item["tconst"] for item in await response.json()] == expected
        assert by_seq  # read by the rows the rebuilt count table lists


@pytest.mark.latency_budget
async def test_a_read_model_far_behind_answers_503_with_its_progress_never_a_scan(settings_for, mix, monkeypatch):
    async def idle(self, db):
        await asyncio.Event().wait()

    monkeypatch.setattr(Projector, "run", idle)  # no background catch-up: the request must not do it all
    monkeypatch.setattr(projector, "INLINE_BLOCKS", 2)
    async with TestClient(TestServer(create_app(settings_for(query_budget_ms=1000)))) as client:
        started = time.monotonic()
        response = await client.get("/datasets/mix/contents?sort=rating")
        assert response.status == 503
        assert time.monotonic() - started < 1.5  # it waited for the background loop half its budget
        assert response.headers["Retry-After"] == "5"
        assert "0 of" in (await response.json())["error"]
        # Import-order pages and point reads do not wait for it.
        assert (await client.get("/datasets/mix/contents?limit=3")).status == 200
        assert (await client.get("/datasets/mix/contents/tt00001")).status == 200


@pytest.mark.latency_budget
async def test_a_query_past_its_budget_is_a_503_naming_it_and_the_engine_stops(settings_for, mix, monkeypatch):
    page = queries.page

    def slow_page(cursor, table, chosen, *args, **kwargs):
        if any("slowdown" in str(parameter).lower() for parameter in chosen.parameters):
            cursor.execute("SELECT sum(a * a) FROM range(1000000000000) r(a)").fetchall()
        return page(cursor, table, chosen, *args, **kwargs)

    monkeypatch.setattr(queries, "page", slow_page)
    async with TestClient(TestServer(create_app(settings_for(query_budget_ms=300)))) as client:
        await caught_up(client)
        started = time.monotonic()
        response = await client.get("/datasets/mix/contents?sort=rating&q=SLOWDOWN")
        assert response.status == 503
        assert time.monotonic() - started < 1.3
        assert "300 ms" in (await response.json())["error"]
        # The engine is free again: the next question is answered at once.
        started = time.monotonic()
        assert (await client.get("/datasets/mix/contents?sort=rating&limit=3")).status == 200
        assert time.monotonic() - started < 1.0


async def test_the_same_question_asked_at_once_runs_once_and_a_change_is_answered_anew(
    settings, mix, monkeypatch, mongo_url, mongo_db_name
):
    page, runs = queries.page, []

    def counted_page(*args, **kwargs):
        runs.append(1)
        time.sleep(0.2)  # long enough for every request below to arrive while it runs
        return page(*args, **kwargs)

    monkeypatch.setattr(queries, "page", counted_page)
    query = "/datasets/mix/contents?sort=-rating&filter[startYear][gte]=1990&limit=5"
    async with TestClient(TestServer(create_app(settings))) as client:
        await caught_up(client)
        runs.clear()
        responses = await asyncio.gather(*(client.get(query) for _ in range(20)))
        bodies = {orjson.dumps([await r.json(), r.headers["X-Total-Count"]]) for r in responses}
        assert len(bodies) == 1 and len(runs) == 1
        assert (await client.get(query)).status == 200 and len(runs) == 1  # kept while the table holds

        with MongoClient(mongo_url, tz_aware=True) as store:
            db = store[mongo_db_name]
            db[ITEMS].update_one({"_id": "mix:tt00001"}, {"$set": {"row.rating": 99.5, "row.startYear": 1999}})
            refresh(db, block_ids_of(db, DATASET, ["tt00001"]))
        response = await client.get(query)
        assert (await response.json())[0]["tconst"] == "tt00001" and len(runs) == 2


async def test_many_readers_of_one_page_at_once_cost_the_store_a_few_reads(settings, mix, monkeypatch):
    view_reads, page_reads = [], []
    read_view, read_page = CatalogIndex._read_view, storage.read_page

    async def counted_view(self, db, dataset):
        view_reads.append(dataset)
        return await read_view(self, db, dataset)

    async def counted_page(*args, **kwargs):
        page_reads.append(1)
        await asyncio.sleep(0.1)
        return await read_page(*args, **kwargs)

    monkeypatch.setattr(CatalogIndex, "_read_view", counted_view)
    monkeypatch.setattr(storage, "read_page", counted_page)
    async with TestClient(TestServer(create_app(settings))) as client:
        responses = await asyncio.gather(*(client.get("/datasets/mix/contents?limit=7&offset=2") for _ in range(50)))
        assert {response.status for response in responses} == {200}
        assert len({orjson.dumps(await response.json()) for response in responses}) == 1
        # One read under way when most arrive, one more for them all; the projector's loop reads too.
        assert len(page_reads) == 1 and len(view_reads) <= 6, (page_reads, view_reads)


@pytest.mark.parametrize(
    ("parameter", "value", "field"),
    [
        ("filter[startYear][isnull]", "maybe", "filter[startYear][isnull]"),
        ("filter[nope][gt]", "1", "filter[nope]"),
        ("filter[startYear][in]", ",".join(["1"] * 101), "filter[startYear][in]"),
        ("facet_size", "0", "facet_size"),
        ("facet", "nope", "facet"),
        ("facet_split", "genres", "facet_split"),
        ("filter[genres][has]", "Drama,Comedy", "filter[genres][has]"),
        ("filter[genres][has]", "", "filter[genres][has]"),
    ],
)
async def test_bad_operators_and_facets_are_a_400_naming_the_parameter(mix_client, parameter, value, field):
    path = "/datasets/mix/facets" if parameter.startswith("facet") else "/datasets/mix/contents"
    # facet_size and facet_split come with a facet (titleType): facet_split must name one of them.
    query = (
        {parameter: value}
        if parameter not in ("facet_size", "facet_split")
        else {"facet": "titleType", parameter: value}
    )
    response = await mix_client.get(URL(path).with_query(query))
    assert response.status == 400
    assert (await response.json())["details"][0]["field"] == field
