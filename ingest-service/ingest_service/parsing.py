"""CSV bytes to records: the header check the API makes on an upload's first bytes, and the record
stream the worker imports. Pure functions over bytes; no I/O of their own.
"""

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

DELIMITERS = (",", ";", "\t", "|")
HEAD_BYTES = 64 * 1024
UTF8_BOM = codecs.BOM_UTF8
READ_CHUNK_BYTES = 256 * 1024

# Over-long fields are ours to report, row by row; the csv module's own limit (in characters) sits
# well above ours so that it only trips on a runaway field, such as an unterminated quote.
MAX_FIELD_BYTES = 1024 * 1024
CSV_FIELD_LIMIT = 8 * MAX_FIELD_BYTES
csv.field_size_limit(CSV_FIELD_LIMIT)

_LINE_END = re.compile(rb"\r\n|\r|\n")


class InvalidCsv(ValueError):
    """The upload is not a CSV file we can import; the message says why, for the uploader."""


@dataclass(frozen=True)
class CsvLayout:
    delimiter: str
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One CSV record, or the reason it could not be read."""

    line: int  # the physical line the record starts on; the header is line 1
    fields: list[str]
    end_offset: int  # bytes of the file up to the end of this record: where the next one starts
    next_line: int  # the line the next record starts on
    error: str | None = None


def inspect_head(head: bytes, *, complete: bool) -> CsvLayout:
    """The delimiter and column names of a CSV file, judged from its first bytes.

    ``head`` holds at most ``HEAD_BYTES`` from the start of the file; ``complete`` says it is the
    whole file. Raises ``InvalidCsv`` for an empty or binary file, one that is not UTF-8, and a
    header row with an empty, duplicated or ``$``-prefixed column name.
    """
    head = head.removeprefix(UTF8_BOM)
    if not head:
        raise InvalidCsv("The file is empty")
    if b"\x00" in head:
        raise InvalidCsv("The file is not text: it contains NUL bytes")
    try:
        # A multi-byte character cut off by the end of the head is fine unless the file ends there.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError as exc:
        raise InvalidCsv(f"The file is not UTF-8 text (invalid byte at offset {exc.start})") from None

    header_text, delimiter = _header_record(text)
    if header_text is None and not complete:
        raise InvalidCsv(f"The header row is longer than {HEAD_BYTES // 1024} KiB")
    record = header_text if header_text is not None else text
    fields = next(csv.reader([record], delimiter=delimiter), [])
    return CsvLayout(delimiter=delimiter, columns=_column_names(fields))


def _header_record(text: str) -> tuple[str | None, str]:
    """The header record's text (``None`` if it does not end in ``text``) and its delimiter.

    The delimiter is the candidate seen most often outside quotes in the header; ties go to the
    earlier one in ``DELIMITERS``, so a one-column file reads as comma-separated.
    """
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    end = None
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in counts:
            counts[char] += 1
        elif char in "\r\n":
            end = index
            break
    delimiter = max(DELIMITERS, key=lambda d: counts[d])
    return (text[:end] if end is not None else None), delimiter


def normalise_column_name(name: str) -> str:
    return name.replace("\ufeff", "").replace("\r", "").strip()


def _column_names(fields: list[str]) -> tuple[str, ...]:
    columns = tuple(normalise_column_name(f) for f in fields) or ("",)
    seen: set[str] = set()
    for position, name in enumerate(columns, start=1):
        if not name:
            raise InvalidCsv(f"Column {position} of the header row has no name")
        if name in seen:
            raise InvalidCsv(f"Column name {name!r} appears more than once in the header row")
        if name.startswith("$"):
            raise InvalidCsv(f"Column name {name!r} must not start with '$'")
        seen.add(name)
    return columns


class DecodedLines:
    """The lines of a binary stream as text, line ends kept, for ``csv.reader``.

    Splits on LF, CRLF and CR (a CR at a chunk's end waits for the next chunk, in case an LF
    follows). Each line is decoded on its own, so a line that is not UTF-8 is counted in
    ``undecodable`` and replaced characters keep the parser going. ``offset`` is the number of
    bytes of the file handed out so far: exactly where the record the csv reader just finished
    ends, since the reader takes no line beyond its record.
    """

    def __init__(self, read: Callable[[int], bytes], *, offset: int = 0) -> None:
        self._read = read
        self.offset = offset
        self.undecodable = 0

    def __iter__(self) -> Iterator[str]:
        buffer = b""
        at_start = self.offset == 0
        while True:
            chunk = self._read(READ_CHUNK_BYTES)
            at_eof = not chunk
            if at_start and chunk:
                # Only a BOM split across two reads would escape this; no stream chunks that finely.
                without_bom = chunk.removeprefix(UTF8_BOM)
                self.offset += len(chunk) - len(without_bom)
                chunk, at_start = without_bom, False
            buffer += chunk
            start = 0
            for match in _LINE_END.finditer(buffer):
                end = match.end()
                if end == len(buffer) and not at_eof and match.group() == b"\r":
                    break
                yield self._decode(buffer[start:end])
                start = end
            buffer = buffer[start:]
            if at_eof:
                if buffer:
                    yield self._decode(buffer)
                return

    def _decode(self, line: bytes) -> str:
        self.offset += len(line)
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            self.undecodable += 1
            return line.decode("utf-8", "replace")


def read_records(
    read: Callable[[int], bytes], delimiter: str, *, offset: int = 0, first_line: int = 1
) -> Iterator[Record]:
    """The records of a CSV stream from byte ``offset`` (a record boundary) on, blank lines skipped.

    A record that is not valid CSV or not UTF-8 comes with ``error`` set and reading goes on.
    """
    lines = DecodedLines(read, offset=offset)
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        line = first_line + reader.line_num
        undecodable_before = lines.undecodable
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(line, [], lines.offset, first_line + reader.line_num, f"Not valid CSV: {exc}")
            continue
        next_line = first_line + reader.line_num
        if lines.undecodable != undecodable_before:
            yield Record(line, [], lines.offset, next_line, "The line is not valid UTF-8")
        elif fields:
            yield Record(line, fields, lines.offset, next_line)
