"""Import throughput and memory: the full pipeline against the physical floor on the same store.

For each file shape and ``--rows`` count, on a fresh local stack run as ``make dev`` runs it (every
Procfile process on free ports, catalog-service up with its start-up index work done):
  (a) pipeline: POST /upload_csv through the gateway until the job reads Success, in rows/s;
  (b) ceiling: the same rows, as the documents the worker stores, written by ``insert_many``
      batches from one process into a bare collection (only ``_id`` indexed);
and the peak RSS (VmHWM) of the ingest API and of the worker's processes.

Shapes: ``narrow``, the seed's 12 text-heavy columns; ``wide``, 25 columns shaped as R's
``ggplot2movies`` (integers, decimals, mostly empty budget and rating cells).

    python bench/ingest.py                        # both shapes, 200,000 rows, 3 runs of each side
    python bench/ingest.py --rows 50000 500000    # memory must not grow with the file
    python bench/ingest.py --shape wide --gzip    # also the same rows uploaded gzipped: within 10% of plain?
    python bench/ingest.py --modes --rows 1000000 # rows that change items in place, against inserts

With ``--modes``: one IMDB-shaped dataset of ``--rows`` titles (``title.basics``' columns, tab-separated,
``\\N`` for missing values), then, alternated ``--repeat`` times on the same stack: (a) ``mode=upsert``
of a fifth of its keys, drawn at random, with a changed ``titleType``; (b) ``mode=merge`` of a
``title.ratings``-shaped file over every 7th key; (c) an insert of as many new titles as (a) has rows.
Reported: each one's rows/s (median) and the ratio of (a) and (b) to (c).

Each side runs ``--repeat`` times, alternated on the same stack (the catalog emptied before each
pipeline run); the table shows the medians (ratio: the median of the runs' ratios). With ``--gzip``
each run also uploads the same rows gzipped (decompressed by the worker as it reads), reported as
its own ratio to the ceiling and to the plain upload.
"""

import argparse
import csv
import gzip
import io
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from pymongo import MongoClient, UpdateOne

from catalog_testkit.stack import LocalStack
from ingest_service.catalog_blocks import item_document
from service_common.catalog_layout import BLOCKS, DATASETS, IDS_PER_READ, ITEMS, SUMMARY_CHUNKS

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["show_id", "type", "title", "director", "cast", "country", "date_added", "release_year",
           "rating", "duration", "listed_in", "description"]  # fmt: skip
WIDE_COLUMNS = ["id", "title", "year", "length", "budget", "rating", "votes", "r1", "r2", "r3", "r4", "r5", "r6",
                "r7", "r8", "r9", "r10", "mpaa", "Action", "Animation", "Comedy", "Drama", "Documentary",
                "Romance", "Short"]  # fmt: skip
BATCH = 1000
TARGET_RATIO = 0.6
IMDB_COLUMNS = ["tconst", "titleType", "primaryTitle", "originalTitle", "isAdult", "startYear", "endYear",
                "runtimeMinutes", "genres"]  # fmt: skip
TITLE_TYPES = ["movie", "short", "tvEpisode", "tvSeries", "video"]
# Merge and upsert against insert, on the same stack and dataset (issue 21).
TARGET_MODES_RATIO = 0.6
TARGET_RSS_MB = 150
# A gzipped upload of the same rows may cost at most this much of the plain upload's throughput.
TARGET_GZIP_SHARE = 0.9


def write_csv(path: Path, rows: int, shape: str = "narrow", *, first: int = 0) -> None:
    """``rows`` rows numbered from ``first``: seed-shaped (every third a TV show), or ``wide``."""
    if shape == "wide":
        write_wide_csv(path, rows)
        return
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for n in range(first, first + rows):
            writer.writerow(
                [
                    f"s{n}",
                    "Movie" if n % 3 else "TV Show",
                    f"Title number {n}",
                    f"Director {n % 997}",
                    "Actor A, Actor B, Actor C",
                    "India",
                    "September 2, 2021",
                    1950 + n % 70,
                    "TV-14",
                    f"{80 + n % 90} min",
                    "Dramas, International Movies",
                    f"A plot summary for title {n}, about as long as the seed's.",
                ]
            )


def write_wide_csv(path: Path, rows: int) -> None:
    """``ggplot2movies``-shaped rows: a numeric id, ints, one-decimal floats, and empty cells where that
    file has NA (budget for nine films in ten, mpaa for most)."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(WIDE_COLUMNS)
        for n in range(rows):
            shares = [f"{(n * k) % 45 / 10 + 0.5:.1f}" for k in range(1, 11)]
            writer.writerow(
                [
                    n + 1,
                    f"Film number {n}",
                    1893 + n % 113,
                    60 + n % 120,
                    "" if n % 10 else 1000 * (n % 5000),
                    f"{1 + n % 90 / 10:.1f}",
                    5 + n % 15000,
                    *shares,
                    "" if n % 7 else "PG-13",
                    *((n >> k) & 1 for k in range(7)),
                ]
            )


def stored_value(text: str) -> int | float | str | None:
    """What the worker stores for a cell of a column whose sampled values all look like this one."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants: the Procfile commands may run under a shell, Celery forks its pool."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def peak_rss_mb(pid: int) -> float:
    """The largest VmHWM (peak resident set) among the process tree's Python processes, in MB."""
    peak = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak / 1024


def write_gzip(source: Path, path: Path) -> None:
    with source.open("rb") as plain, gzip.open(path, "wb", compresslevel=6) as packed:
        shutil.copyfileobj(plain, packed, 1024 * 1024)


def login(base_url: str) -> dict[str, str]:
    user = {"username": "bench", "email": "bench@example.com", "password": "bench-password-1"}
    requests.post(f"{base_url}/signup", json=user, timeout=10)
    response = requests.post(f"{base_url}/login", json={"username": "bench", "password": user["password"]}, timeout=10)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def run_pipeline(stack: LocalStack, upload_path: Path) -> float:
    return upload_and_wait(stack.url, login(stack.url), upload_path)


def upload_and_wait(base_url: str, headers: dict[str, str], upload_path: Path) -> float:
    """Uploads a file through the gateway and waits for its import to succeed; the seconds it took."""
    return upload_until_done(base_url, headers, upload_path)[0]


def upload_until_done(
    base_url: str, headers: dict[str, str], upload_path: Path, fields: dict[str, str] | None = None
) -> tuple[float, dict]:
    """Uploads a file (with these form fields) and waits for its import to succeed: the seconds it
    took, and the job's final status."""
    started = time.perf_counter()
    with upload_path.open("rb") as file:
        response = requests.post(
            f"{base_url}/upload_csv", headers=headers, files={"file": file}, data=fields or {}, timeout=600
        )
    response.raise_for_status()
    task_id = response.json()["task_id"]
    while True:
        response = requests.get(f"{base_url}/fetch_csv_status/{task_id}", headers=headers, timeout=10)
        if response.status_code == 401:  # the access token ran out during a long import: log in again
            headers = login(base_url)
            continue
        response.raise_for_status()
        status = response.json()
        if status["status"] not in ("Pending", "Progress", "Paused"):
            break
        # Not much more often: every status read is a query on the store that is being measured.
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    if status["status"] != "Success":
        raise RuntimeError(f"the import ended {status['status']}: {status.get('error')}")
    return elapsed, status


def run_ceiling(mongo_url: str, csv_path: Path) -> float:
    """The same rows, parsed and written in ``insert_many`` batches into a collection with only its
    ``_id`` index: the documents the worker stores (typed values, its bookkeeping fields)."""
    client = MongoClient(mongo_url)
    collection = client["bench_ceiling"]["catalog_items"]
    collection.drop()
    started = time.perf_counter()
    with csv_path.open(newline="") as file:
        reader = csv.reader(io.TextIOWrapper(file.buffer, encoding="utf-8", newline=""))
        columns = next(reader)
        batch, now = [], datetime.now(UTC)
        for seq, fields in enumerate(reader, start=1):
            row = {column: stored_value(value) for column, value in zip(columns, fields, strict=True)}
            batch.append(
                item_document(
                    "default",
                    fields[0],
                    seq=seq,
                    block_id="default:1",
                    row=row,
                    job_id="ceiling",
                    line=seq + 1,
                    now=now,
                )
            )
            if len(batch) == BATCH:
                collection.insert_many(batch, ordered=False)
                batch = []
        if batch:
            collection.insert_many(batch, ordered=False)
    elapsed = time.perf_counter() - started
    client.drop_database("bench_ceiling")
    client.close()
    return elapsed


def reset_catalog(mongo_url: str, db_name: str) -> None:
    """Every pipeline run imports into an empty catalog, as the ceiling writes into an empty collection."""
    client = MongoClient(mongo_url)
    for name in (ITEMS, BLOCKS, SUMMARY_CHUNKS, DATASETS, "counters"):
        client[db_name][name].delete_many({})  # emptied, not dropped: the indexes the stack made stay
    client.close()


def bench(rows: int, repeat: int, *, shape: str, with_gzip: bool = False) -> dict[str, float]:
    """``repeat`` runs of each side on one stack, alternated (C P, P C, C P, ...) so that neither
    side always follows the other's writes; the medians are reported."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as scratch:
        scratch_dir = Path(scratch)
        csv_path = scratch_dir / f"movies-{rows}.csv"
        write_csv(csv_path, rows, shape)
        gzip_path = scratch_dir / f"movies-{rows}.csv.gz"
        if with_gzip:
            write_gzip(csv_path, gzip_path)
        stack = LocalStack(ROOT, scratch_dir / "stack")
        pipelines: list[float] = []
        gzipped: list[float] = []
        ceilings: list[float] = []
        try:
            stack.start()
            mongo_url, db_name = stack.env["MONGO_URL"], stack.env["MONGO_DB"]
            for run in range(repeat):
                sides = ["ceiling", "pipeline", *(["gzip"] if with_gzip else [])]
                order = sides if run % 2 == 0 else sides[::-1]
                for side in order:
                    if side == "pipeline":
                        reset_catalog(mongo_url, db_name)
                        pipelines.append(rows / run_pipeline(stack, csv_path))
                    elif side == "gzip":
                        reset_catalog(mongo_url, db_name)
                        gzipped.append(rows / run_pipeline(stack, gzip_path))
                    else:
                        ceilings.append(rows / run_ceiling(mongo_url, csv_path))
                line = (
                    f"  run {run + 1}: pipeline {pipelines[-1]:,.0f} r/s, ceiling {ceilings[-1]:,.0f} r/s, "
                    f"ratio {pipelines[-1] / ceilings[-1]:.2f}"
                )
                if with_gzip:
                    line += f"; gzip {gzipped[-1]:,.0f} r/s, ratio {gzipped[-1] / ceilings[-1]:.2f}"
                print(line, flush=True)
            api_rss = peak_rss_mb(stack.processes["ingest"].pid)
            worker_rss = peak_rss_mb(stack.processes["worker"].pid)
        finally:
            stack.stop()
        result = {
            "shape": shape,
            "rows": rows,
            "mb": csv_path.stat().st_size / 1e6,
            "pipeline": statistics.median(pipelines),
            "ceiling": statistics.median(ceilings),
            "ratio": statistics.median(p / c for p, c in zip(pipelines, ceilings, strict=True)),
            "api_rss": api_rss,
            "worker_rss": worker_rss,
        }
        if with_gzip:
            result |= {
                "gzip_mb": gzip_path.stat().st_size / 1e6,
                "gzip": statistics.median(gzipped),
                "gzip_ratio": statistics.median(g / c for g, c in zip(gzipped, ceilings, strict=True)),
                "gzip_share": statistics.median(g / p for g, p in zip(gzipped, pipelines, strict=True)),
            }
        return result


def write_titles(path: Path, numbers: Iterable[int], *, title_type: str | None = None) -> int:
    """``title.basics``-shaped rows for these title numbers (each its own ``titleType``, or this one);
    how many there are."""
    count = 0
    with path.open("w") as out:
        out.write("\t".join(IMDB_COLUMNS) + "\n")
        for n in numbers:
            kind = title_type or TITLE_TYPES[n % len(TITLE_TYPES)]
            year, end = 1900 + n % 125, "\\N" if n % 11 else str(1950 + n % 70)
            runtime = "\\N" if n % 13 == 0 else str(20 + n % 160)
            out.write(f"tt{n:08d}\t{kind}\tTitle {n}\tOriginal title {n}\t0\t{year}\t{end}\t{runtime}\tDrama,Comedy\n")
            count += 1
    return count


def write_ratings(path: Path, numbers: Iterable[int], run: int) -> int:
    """``title.ratings``-shaped rows (key, ``averageRating``, ``numVotes``) for these title numbers."""
    count = 0
    with path.open("w") as out:
        out.write("tconst\taverageRating\tnumVotes\n")
        for n in numbers:
            out.write(f"tt{n:08d}\t{1 + (n + run) % 90 / 10:.1f}\t{5 + (n * 31 + run) % 100_000}\n")
            count += 1
    return count


def bench_modes(rows: int, repeat: int) -> dict[str, Any]:
    """(a) upsert, (b) merge, (c) insert into one IMDB-shaped dataset of ``rows`` titles, alternated
    (a b c, c b a, ...) ``repeat`` times; rows/s of each run."""
    share = max(1, rows // 5)
    results: dict[str, list[float]] = {"upsert": [], "merge": [], "insert": []}
    floors: dict[str, list[float]] = {"insert": [], "read": [], "update": []}
    fields = {"dataset": "imdb", "key": "tconst"}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-modes-") as scratch:
        scratch_dir = Path(scratch)
        stack = LocalStack(ROOT, scratch_dir / "stack")
        try:
            stack.start()
            headers = login(stack.url)
            base = scratch_dir / "titles.tsv"
            write_titles(base, range(rows))
            seconds, _ = upload_until_done(stack.url, headers, base, fields)
            print(f"  dataset: {rows:,} titles inserted at {rows / seconds:,.0f} r/s", flush=True)
            next_title = rows
            for run in range(repeat):
                order = ["upsert", "merge", "insert"] if run % 2 == 0 else ["insert", "merge", "upsert"]
                for mode in order:
                    path = scratch_dir / f"{mode}-{run}.tsv"
                    if mode == "upsert":
                        keys = random.Random(run).sample(range(rows), share)
                        count = write_titles(path, keys, title_type=f"changed{run}")
                    elif mode == "merge":
                        count = write_ratings(path, range(0, rows, 7), run)
                    else:
                        count = write_titles(path, range(next_title, next_title + share))
                        next_title += share
                    # A fresh token: the one before may have run out during a long import.
                    headers = login(stack.url)
                    seconds, status = upload_until_done(stack.url, headers, path, {**fields, "mode": mode})
                    changed = status["rows_updated"] if mode != "insert" else status["rows_inserted"]
                    if changed != count:
                        raise RuntimeError(f"{mode} run {run + 1}: {changed:,} of {count:,} rows written")
                    results[mode].append(count / seconds)
                floor = run_store_floor(stack.env["MONGO_URL"], min(share, 50_000), run)
                for name, value in floor.items():
                    floors[name].append(value)
                print(
                    f"  run {run + 1}: "
                    + ", ".join(f"{mode} {results[mode][-1]:,.0f} r/s" for mode in ("upsert", "merge", "insert"))
                    + "; the store alone: "
                    + ", ".join(f"{name} {value:,.0f} r/s" for name, value in floor.items()),
                    flush=True,
                )
            worker_mb = peak_rss_mb(stack.processes["worker"].pid)
        finally:
            stack.stop()
    medians = {mode: statistics.median(values) for mode, values in results.items()}
    floor = {name: statistics.median(values) for name, values in floors.items()}
    return medians | {"rows": rows, "share": share, "floor": floor, "worker_mb": worker_mb}


def run_store_floor(mongo_url: str, count: int, seed: int) -> dict[str, float]:
    """The store's own speed, in rows/s, at what a merge must do per row, on ``count`` item-shaped
    documents in a bare collection (only ``_id`` indexed) of the same store: insert them
    (``insert_many`` of ``BATCH``), read them back by id in random order (``$in`` of ``IDS_PER_READ``,
    as the worker reads items) and update each by id (unordered ``bulk_write`` of ``BATCH``
    ``UpdateOne``). Whatever updates items in place pays at least the read and the update."""
    client = MongoClient(mongo_url)
    collection = client["bench_floor"]["catalog_items"]
    collection.drop()
    now = datetime.now(UTC)
    rows = [{"tconst": f"tt{n:08d}", "averageRating": 5.0} for n in range(count)]
    documents = [
        item_document("floor", row["tconst"], seq=n, block_id="floor:0", row=row, job_id="floor", line=n, now=now)
        for n, row in enumerate(rows)
    ]
    ids = [document["_id"] for document in documents]
    random.Random(seed).shuffle(ids)
    timings = {}
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        collection.insert_many(documents[start : start + BATCH], ordered=False)
    timings["insert"] = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, count, IDS_PER_READ):
        list(collection.find({"_id": {"$in": ids[start : start + IDS_PER_READ]}}, {"row": 1}))
    timings["read"] = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        change = {"$set": {"row.averageRating": 6.0}, "$inc": {"w": 1}}
        collection.bulk_write([UpdateOne({"_id": id_}, change) for id_ in ids[start : start + BATCH]], ordered=False)
    timings["update"] = time.perf_counter() - started
    client.drop_database("bench_floor")
    client.close()
    return {name: count / seconds for name, seconds in timings.items()}


def print_modes(result: dict[str, Any]) -> None:
    insert = result["insert"]
    print(f"\ndataset of {result['rows']:,} titles; upsert and insert of {result['share']:,} rows, merge of every 7th")
    print(f"{'mode':<8} {'r/s':>9} {'of insert':>10}")
    for mode in ("upsert", "merge", "insert"):
        print(f"{mode:<8} {result[mode]:>9,.0f} {result[mode] / insert:>10.2f}")
    floor = result["floor"]
    # A row changed in place costs at least a read and an update by id; the store's insert sets the scale.
    in_place = 1 / (1 / floor["read"] + 1 / floor["update"])
    print(
        f"\nthe store alone, bare collection: insert {floor['insert']:,.0f} r/s, read by id {floor['read']:,.0f} "
        f"r/s, update by id {floor['update']:,.0f} r/s; read + update {in_place:,.0f} r/s = "
        f"{in_place / floor['insert']:.2f} of its insert"
    )
    print(f"the worker's peak RSS (VmHWM) over the whole run: {result['worker_mb']:,.0f} MB")
    worst = min(result["upsert"], result["merge"]) / insert
    verdict = "met" if worst >= TARGET_MODES_RATIO else "MISSED"
    print(f"\ntarget: upsert and merge >= {TARGET_MODES_RATIO} of insert ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000], help="rows per run (default 200000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side per row count (default 3)")
    parser.add_argument(
        "--shape", choices=["narrow", "wide"], nargs="+", default=["narrow", "wide"], help="file shapes (default both)"
    )
    parser.add_argument("--gzip", action="store_true", help="also upload the same rows gzipped, and compare")
    parser.add_argument(
        "--modes", action="store_true", help="upsert and merge against insert on an IMDB-shaped dataset of --rows"
    )
    args = parser.parse_args()
    if args.modes:
        for rows in args.rows:
            print(f"Upsert, merge and insert on {rows:,} IMDB-shaped titles ...", flush=True)
            print_modes(bench_modes(rows, args.repeat))
        return

    results = []
    for shape in args.shape:
        for rows in args.rows:
            print(f"Importing {rows:,} {shape} rows ...", flush=True)
            results.append(bench(rows, args.repeat, shape=shape, with_gzip=args.gzip))

    print()
    print(
        f"{'shape':<7} {'rows':>9} {'file MB':>8} {'pipeline r/s':>13} {'ceiling r/s':>12} {'ratio':>6} "
        f"{'API peak MB':>12} {'worker peak MB':>15}"
    )
    for r in results:
        print(
            f"{r['shape']:<7} {r['rows']:>9,} {r['mb']:>8.1f} {r['pipeline']:>13,.0f} {r['ceiling']:>12,.0f} "
            f"{r['ratio']:>6.2f} {r['api_rss']:>12.1f} {r['worker_rss']:>15.1f}"
        )
    if args.gzip:
        print(f"\n{'shape':<7} {'rows':>9} {'gzip MB':>8} {'gzip r/s':>13} {'gzip ratio':>11} {'of plain':>9}")
        for r in results:
            print(
                f"{r['shape']:<7} {r['rows']:>9,} {r['gzip_mb']:>8.1f} {r['gzip']:>13,.0f} "
                f"{r['gzip_ratio']:>11.2f} {r['gzip_share']:>9.2f}"
            )
    worst_ratio = min(r["ratio"] for r in results)
    worst_rss = max(max(r["api_rss"], r["worker_rss"]) for r in results)
    print(
        f"\ntargets: ratio >= {TARGET_RATIO} ({'met' if worst_ratio >= TARGET_RATIO else 'MISSED'}), "
        f"peak RSS <= {TARGET_RSS_MB} MB ({'met' if worst_rss <= TARGET_RSS_MB else 'MISSED'})",
        end="",
    )
    if args.gzip:
        worst_share = min(r["gzip_share"] for r in results)
        print(
            f", gzip >= {TARGET_GZIP_SHARE:.0%} of plain ({'met' if worst_share >= TARGET_GZIP_SHARE else 'MISSED'})",
            end="",
        )
    print()


if __name__ == "__main__":
    main()
