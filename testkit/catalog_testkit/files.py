"""The sample files every suite writes: the seed's columns, any number of rows, zipped if need be."""

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from catalog_testkit.constants import MOVIE_COLUMNS


def movies_csv(
    numbers: Iterable[int] | int,
    *,
    start: int = 0,
    prefix: str = "s",
    line_end: str = "\n",
    extra_rows: Sequence[Sequence[object]] = (),
) -> bytes:
    """The CSV writer every suite uses: one row per number (``numbers`` rows from ``start`` when it is
    a count), keyed ``<prefix><number>``, in the seed's 12 columns, with quoted commas as in the seed;
    ``extra_rows`` are written as given after them."""
    if isinstance(numbers, int):
        numbers = range(start, start + numbers)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=line_end)
    writer.writerow(MOVIE_COLUMNS)
    for n in numbers:
        writer.writerow(
            [
                f"{prefix}{n}",
                "Movie" if n % 3 else "TV Show",
                f"Title {prefix}{n}",
                f"Director {n % 97}",
                "Actor A, Actor B",
                "India",
                "September 2, 2021",
                1990 + n % 30,
                "TV-14",
                f"{90 + n % 60} min",
                "Dramas, International Movies",
                f"Description of title {prefix}{n}, about as long as a real one is.",
            ]
        )
    writer.writerows(extra_rows)
    return out.getvalue().encode()


def write_movies_csv(path: Path, numbers: Iterable[int], prefix: str = "s", **options) -> Path:
    """``movies_csv`` written to ``path``."""
    path.write_bytes(movies_csv(numbers, prefix=prefix, **options))
    return path


def zipped(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive holding ``files`` (name -> content)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()
