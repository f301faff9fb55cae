"""CSV bytes to records: the header check the API makes on an upload's first bytes, and the record
stream the worker imports. Pure functions over bytes; no I/O of their own.

Text reaches the record reader as UTF-8 (``sources.UploadStream`` transcodes other encodings), so
lines are split on bytes and each line is decoded on its own: one bad line spoils one record.
"""

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from charset_normalizer import from_bytes
from charset_normalizer.utils import is_multi_byte_encoding

DELIMITERS = (",", ";", "\t", "|")
HEAD_BYTES = 64 * 1024
UTF8 = "utf-8"
UTF8_BOM = codecs.BOM_UTF8
# Longest first: a UTF-32 LE BOM begins with the UTF-16 LE one.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
READ_CHUNK_BYTES = 256 * 1024

# Over-long fields are ours to report, row by row; the csv module's own limit (in characters) sits
# well above ours so that it only trips on a runaway field, such as an unterminated quote.
MAX_FIELD_BYTES = 1024 * 1024
# Keeps a row well inside MongoDB's 16 MiB document limit.
MAX_ROW_BYTES = 8 * MAX_FIELD_BYTES
# A record as written (delimiters, quotes and doubled quotes included) may take twice a row's limit;
# the reader stops buffering one at this length and skips the rest of it unread, so no record, however
# long, costs more memory or more than one pass.
MAX_RECORD_BYTES = 2 * MAX_ROW_BYTES
CSV_FIELD_LIMIT = 8 * MAX_FIELD_BYTES
csv.field_size_limit(CSV_FIELD_LIMIT)

_LINE_END = re.compile(rb"\r\n|\r|\n")
# A whole tab-separated field in quotes with a doubled quote inside: a spreadsheet's RFC 4180 escaping.
_ESCAPED_QUOTE_FIELD = re.compile(r'(?:^|\t)"[^"\t\r\n]*(?:""[^"\t\r\n]*)+"(?=\t|\r|\n|$)', re.MULTILINE)


class InvalidCsv(ValueError):
    """The upload is not a CSV file we can import; the message says why, for the uploader."""


class Quoting(StrEnum):
    AUTO = "auto"  # decided from the file's head: see ``detect_quoting``
    RFC4180 = "rfc4180"  # a field in double quotes may hold delimiters, line ends and doubled quotes
    NONE = "none"  # quotes are ordinary characters; a record is one line (IMDB's datasets)


@dataclass(frozen=True)
class CsvLayout:
    delimiter: str
    columns: tuple[str, ...]
    encoding: str = UTF8
    quoting: Quoting = Quoting.RFC4180


@dataclass(frozen=True, slots=True)
class Record:
    """One CSV record, or the reason it could not be read."""

    line: int  # the physical line the record starts on; the header is line 1
    fields: list[str]
    end_offset: int  # bytes of the file up to the end of this record: where the next one starts
    next_line: int  # the line the next record starts on
    error: str | None = None


def inspect_head(
    head: bytes, *, complete: bool, encoding: str | None = None, quoting: Quoting = Quoting.AUTO
) -> CsvLayout:
    """The encoding, delimiter, quoting and column names of a CSV file, judged from its first bytes.

    ``head`` holds at most ``HEAD_BYTES`` from the start of the (decompressed) file; ``complete``
    says it is the whole file. ``encoding`` is a codec name the uploader chose; without one, a
    UTF-16 or UTF-32 BOM picks that codec and anything else must be UTF-8. Raises ``InvalidCsv``
    for an empty or binary file, one not in its encoding, and a header row with an empty,
    duplicated or ``$``-prefixed column name.
    """
    encoding = encoding or next((codec for bom, codec in BOMS if head.startswith(bom)), UTF8)
    if encoding == UTF8:
        head = head.removeprefix(UTF8_BOM)
    if not head:
        raise InvalidCsv("The file is empty")
    text = _decode_head(head, encoding, complete=complete).removeprefix("\ufeff")
    if not text:
        raise InvalidCsv("The file is empty")
    if "\x00" in text:
        raise InvalidCsv("The file is not text: it contains NUL bytes")

    header_text, delimiter = _header_record(text, quoted=quoting is not Quoting.NONE)
    if quoting is Quoting.AUTO:
        quoting = detect_quoting(text, delimiter, complete=complete)
        if quoting is Quoting.NONE:
            header_text, delimiter = _header_record(text, quoted=False)
    if header_text is None and not complete:
        raise InvalidCsv(f"The header row is longer than {HEAD_BYTES // 1024} KiB")
    record = header_text if header_text is not None else text
    fields = next(_reader([record], delimiter, quoting), [])
    return CsvLayout(delimiter=delimiter, columns=_column_names(fields), encoding=encoding, quoting=quoting)


def _decode_head(head: bytes, encoding: str, *, complete: bool) -> str:
    if encoding == UTF8 and b"\x00" in head:
        raise InvalidCsv("The file is not text: it contains NUL bytes")
    try:
        # A multi-byte character cut off by the end of the head is fine unless the file ends there.
        return codecs.getincrementaldecoder(encoding)().decode(head, final=complete)
    except UnicodeDecodeError as exc:
        if encoding != UTF8:
            raise InvalidCsv(f"The file is not {encoding} text (invalid byte at offset {exc.start})") from None
        guess = guess_encoding(head)
        hint = f"; it looks like {guess}" if guess else ""
        raise InvalidCsv(
            f"The file is not UTF-8 text (invalid byte at offset {exc.start}): "
            f"name its encoding in the form field 'encoding'{hint}"
        ) from None


def guess_encoding(head: bytes) -> str | None:
    """The likely codec of text that is not UTF-8, or None. charset-normalizer cannot tell the Latin
    code pages apart on a few accented letters; Windows-1252, the usual spreadsheet export, is
    named when it reads the bytes at all."""
    best = from_bytes(head).best()
    if best is None:
        return None
    guess = codecs.lookup(best.encoding).name
    if not is_multi_byte_encoding(best.encoding):
        try:
            head.decode("cp1252")
        except UnicodeDecodeError:
            return guess
        return "cp1252"
    return guess


def detect_quoting(text: str, delimiter: str, *, complete: bool) -> Quoting:
    """RFC 4180 quoting unless the file is tab-separated and its head gives no sign of it.

    Tab-separated files are often written without any quoting (IMDB's datasets, database dumps),
    where a quote is an ordinary character: a title may start with one and never close it. So a
    TSV is read with quoting only when quoting changes the head's records for the better (each
    record then has the header's field count, and does not without it) or a field escapes a
    quote RFC-style (``"say ""hi"" now"``), as spreadsheets write.
    """
    if delimiter != "\t" or '"' not in text:
        return Quoting.RFC4180 if delimiter != "\t" else Quoting.NONE
    quoted_fits = _fields_match_header(text, delimiter, Quoting.RFC4180, complete=complete)
    unquoted_fits = _fields_match_header(text, delimiter, Quoting.NONE, complete=complete)
    if quoted_fits and not unquoted_fits:
        return Quoting.RFC4180
    if quoted_fits and _ESCAPED_QUOTE_FIELD.search(text):
        return Quoting.RFC4180
    return Quoting.NONE


def _fields_match_header(text: str, delimiter: str, quoting: Quoting, *, complete: bool) -> bool:
    """Whether every record of the head has the header's field count; the last one, which the end
    of the head may cut short, counts only when the head is the whole file."""
    try:
        records = [r for r in _reader(io.StringIO(text, newline=""), delimiter, quoting) if r]
    except csv.Error:
        return False
    if not complete:
        records = records[:-1]
    return all(len(r) == len(records[0]) for r in records)


def _reader(lines, delimiter: str, quoting: Quoting):
    if quoting is Quoting.NONE:
        return csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_NONE)
    return csv.reader(lines, delimiter=delimiter)


def _header_record(text: str, *, quoted: bool = True) -> tuple[str | None, str]:
    """The header record's text (``None`` if it does not end in ``text``) and its delimiter.

    The delimiter is the candidate seen most often outside quotes in the header; ties go to the
    earlier one in ``DELIMITERS``, so a one-column file reads as comma-separated.
    """
    counts = dict.fromkeys(DELIMITERS, 0)
    in_quotes = False
    end = None
    for index, char in enumerate(text):
        if char == '"' and quoted:
            in_quotes = not in_quotes
        elif in_quotes:
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


class RecordTooLong(Exception):
    """The record being read passed ``MAX_RECORD_BYTES``; the rest of its line was skipped unread."""


class DecodedLines:
    """The lines of a binary stream as text, line ends kept, for ``csv.reader``.

    Splits on LF, CRLF and CR (a CR at a chunk's end waits for the next chunk, in case an LF
    follows). Each line is decoded on its own, so a line that is not UTF-8 is counted in
    ``undecodable`` and replaced characters keep the parser going. ``offset`` is the number of
    bytes of the file handed out so far: exactly where the record the csv reader just finished
    ends, since the reader takes no line beyond its record. ``lines`` counts the physical lines
    handed out or skipped.

    The record being read began at ``record_start`` (the caller sets it before each record). Once
    the record passes ``max_record_bytes`` without a line end, ``RecordTooLong`` is raised after the
    rest of the line has been read past without being kept: memory stays at one record's limit and
    each byte is looked at once, however long the line.
    """

    def __init__(
        self, read: Callable[[int], bytes], *, offset: int = 0, max_record_bytes: int = MAX_RECORD_BYTES
    ) -> None:
        self._read = read
        self._max_record_bytes = max_record_bytes
        self._buffer = bytearray()
        self._searched = 0  # no line end in the buffer before this position
        self._at_start = offset == 0
        self._eof = False
        self.offset = offset
        self.record_start = offset
        self.lines = 0
        self.undecodable = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while True:
            end = self._line_end()
            if end is not None:
                return self._hand_out(end)
            if self.offset + len(self._buffer) - self.record_start > self._max_record_bytes:
                self._skip_line()
                raise RecordTooLong
            if self._eof:
                if self._buffer:
                    return self._hand_out(len(self._buffer))
                raise StopIteration
            self._fill()

    def _line_end(self) -> int | None:
        """Where the buffer's first complete line ends; a CR at its very end is not one yet."""
        match = _LINE_END.search(self._buffer, self._searched)
        if match is None:
            self._searched = len(self._buffer)
            return None
        if match.end() == len(self._buffer) and not self._eof and match.group() == b"\r":
            self._searched = match.start()
            return None
        return match.end()

    def _fill(self) -> None:
        chunk = self._read(READ_CHUNK_BYTES)
        if not chunk:
            self._eof = True
        elif self._at_start:
            # Only a BOM split across two reads would escape this; no stream chunks that finely.
            without_bom = chunk.removeprefix(UTF8_BOM)
            self.offset += len(chunk) - len(without_bom)
            chunk, self._at_start = without_bom, False
        self._buffer += chunk

    def _hand_out(self, end: int) -> str:
        line = bytes(self._buffer[:end])
        self._drop(end)
        self.lines += 1
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            self.undecodable += 1
            return line.decode("utf-8", "replace")

    def _skip_line(self) -> None:
        while (end := self._line_end()) is None and not self._eof:
            # Nothing of the line is kept but a CR that may be the first half of a CRLF.
            self._drop(len(self._buffer) - self._buffer.endswith(b"\r"))
            self._fill()
        self._drop(len(self._buffer) if end is None else end)
        self.lines += 1

    def _drop(self, end: int) -> None:
        self.offset += end
        del self._buffer[:end]
        self._searched = max(0, self._searched - end)


def read_records(
    read: Callable[[int], bytes],
    delimiter: str,
    *,
    offset: int = 0,
    first_line: int = 1,
    quoting: Quoting = Quoting.RFC4180,
    encoding: str = UTF8,
) -> Iterator[Record]:
    """The records of a UTF-8 CSV stream from byte ``offset`` (a record boundary) on, blank lines
    skipped. ``encoding`` is the file's own, named in the error of a line that was not valid in it.

    A record that is not valid CSV or not valid text comes with ``error`` set and reading goes on.
    """
    lines = DecodedLines(read, offset=offset)
    reader = _reader(lines, delimiter, quoting)
    encoding_label = "UTF-8" if encoding == UTF8 else encoding
    while True:
        line = first_line + lines.lines
        undecodable_before = lines.undecodable
        lines.record_start = lines.offset
        try:
            fields = next(reader)
        except StopIteration:
            return
        except RecordTooLong:
            # The reader holds a part of the record: the next record starts with a reader of its own.
            reader = _reader(lines, delimiter, quoting)
            message = f"The record is longer than {MAX_RECORD_BYTES // 1024**2} MiB as written in the file"
            yield Record(line, [], lines.offset, first_line + lines.lines, message)
            continue
        except csv.Error as exc:
            yield Record(line, [], lines.offset, first_line + lines.lines, f"Not valid CSV: {exc}")
            continue
        next_line = first_line + lines.lines
        if lines.undecodable != undecodable_before:
            yield Record(line, [], lines.offset, next_line, f"The line is not valid {encoding_label}")
        elif fields:
            yield Record(line, fields, lines.offset, next_line)
