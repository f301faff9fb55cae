"""The CSV reader on its own: header checks on an upload's first bytes, and the record stream."""

import io
import itertools
import time
import tracemalloc

import pytest

from ingest_service.parsing import (
    HEAD_BYTES,
    MAX_FIELD_BYTES,
    MAX_RECORD_BYTES,
    READ_CHUNK_BYTES,
    InvalidCsv,
    Quoting,
    inspect_head,
    read_records,
)

IMDB_HEAD = (
    "tconst\ttitleType\tprimaryTitle\tstartYear\n"
    "tt0000001\tshort\tCarmencita\t1894\n"
    'tt0000002\tmovie\t"Rolling in the Deep Dish"\t\\N\n'
    'tt0000003\tmovie\t"Unbalanced start\t2001\n'
    'tt0000004\tmovie\tThe "Inner" Quote\t1999\n'
)


def records(data: bytes, delimiter: str = ",", **kwargs):
    return list(read_records(io.BytesIO(data).read, delimiter, **kwargs))


def rows(data: bytes, delimiter: str = ","):
    return [r.fields for r in records(data, delimiter)]


# --- the header check the API makes -------------------------------------------------------


def test_header_columns_are_trimmed_and_bom_removed():
    layout = inspect_head(b"\xef\xbb\xbf show_id ,title\r\n1,a\r\n", complete=True)
    assert layout.columns == ("show_id", "title")
    assert layout.delimiter == ","


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_detected_from_the_header(delimiter):
    header = delimiter.join(["show_id", "title", "cast"])
    layout = inspect_head(f'{header}\n1,"a;b|c",x\n'.encode(), complete=True)
    assert layout.delimiter == delimiter
    assert layout.columns == ("show_id", "title", "cast")


def test_delimiters_inside_quoted_header_names_do_not_count():
    layout = inspect_head(b'"a;b;c";"d,e"\n', complete=True)
    assert layout.delimiter == ";"
    assert layout.columns == ("a;b;c", "d,e")


def test_a_single_column_file_reads_as_comma_separated():
    assert inspect_head(b"title\nx\n", complete=True).columns == ("title",)


def test_header_without_line_end_is_the_whole_file():
    assert inspect_head(b"a,b", complete=True).columns == ("a", "b")


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"", "The file is empty"),
        (b"\xef\xbb\xbf", "The file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL bytes"),
        (b"a,b\n\xff\xfe,x\n", "not UTF-8 text (invalid byte at offset 4): name its encoding in the form field"),
        (b"a,,c\n", "Column 2 of the header row has no name"),
        (b"\n1,2\n", "Column 1 of the header row has no name"),
        (b"a,b, a\n", "Column name 'a' appears more than once"),
        (b"a,$b\n", "Column name '$b' must not start with '$'"),
    ],
)
def test_unusable_files_are_refused_with_the_reason(head, message):
    with pytest.raises(InvalidCsv, match=message.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")):
        inspect_head(head, complete=True)


def test_a_character_cut_by_the_end_of_the_head_is_fine_unless_the_file_ends_there():
    head = b"title\n" + b"x" * (HEAD_BYTES - 7) + "é".encode()[:1]
    assert inspect_head(head, complete=False).columns == ("title",)
    with pytest.raises(InvalidCsv, match="not UTF-8"):
        inspect_head(head, complete=True)


def test_an_imdb_style_tsv_is_read_without_quoting():
    layout = inspect_head(IMDB_HEAD.encode(), complete=True)
    assert (layout.delimiter, layout.quoting) == ("\t", Quoting.NONE)
    assert layout.columns == ("tconst", "titleType", "primaryTitle", "startYear")


def test_a_tsv_without_quotes_in_its_head_is_read_without_quoting():
    # A quote may come later, unbalanced: only evidence in the head turns quoting on for a TSV.
    assert inspect_head(b"a\tb\n1\tx\n", complete=True).quoting is Quoting.NONE
    assert inspect_head(b"a,b\n1,x\n", complete=True).quoting is Quoting.RFC4180


@pytest.mark.parametrize(
    "head",
    [
        b'a\tb\n1\t"tab\tinside"\n2\tx\n',  # quoting needed for the right field count
        b'a\tb\n1\t"line\nbreak"\n2\tx\n',
        b'a\tb\n1\t"say ""hi"" now"\n',  # a quote escaped as spreadsheets do
    ],
)
def test_a_tsv_whose_head_shows_rfc4180_quoting_is_read_with_it(head):
    assert inspect_head(head, complete=True).quoting is Quoting.RFC4180


def test_the_quoting_field_overrides_detection():
    assert inspect_head(IMDB_HEAD.encode(), complete=True, quoting=Quoting.RFC4180).quoting is Quoting.RFC4180
    layout = inspect_head(b'"a,b",c\n', complete=True, quoting=Quoting.NONE)
    assert layout.columns == ('"a', 'b"', "c")


@pytest.mark.parametrize("bom_codec", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_utf16_and_utf32_with_a_bom_are_detected(bom_codec):
    head = ("\ufeff" + "id\ttitle\n1\tAmélie\n").encode(bom_codec)
    layout = inspect_head(head, complete=True)
    assert layout.encoding == bom_codec[:6]
    assert layout.columns == ("id", "title")


def test_a_named_encoding_reads_the_head_and_a_wrong_one_is_refused():
    cp1252 = "id;title\r\n1;Amélie “smart” €\r\n".encode("cp1252")
    with pytest.raises(InvalidCsv, match="form field 'encoding'; it looks like cp1252"):
        inspect_head(cp1252, complete=True)
    assert inspect_head(cp1252, complete=True, encoding="cp1252").columns == ("id", "title")
    with pytest.raises(InvalidCsv, match=r"not utf-16-le text \(invalid byte at offset"):
        inspect_head(b"id\n\x00\xdc", complete=True, encoding="utf-16-le")


def test_a_header_longer_than_the_head_is_refused():
    with pytest.raises(InvalidCsv, match="longer than 64 KiB"):
        inspect_head(b"a," * (HEAD_BYTES // 2), complete=False)


# --- the record stream the worker imports -------------------------------------------------


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"])
def test_line_ends_lf_crlf_and_cr(line_end):
    data = line_end.join([b"id,description", b"1,first", b"2,second"]) + line_end
    assert rows(data) == [["id", "description"], ["1", "first"], ["2", "second"]]


def test_bom_is_skipped_and_counted_in_offsets():
    data = b"\xef\xbb\xbfid\n1\n"
    result = records(data)
    assert result[0].fields == ["id"]
    assert result[-1].end_offset == len(data)


def test_quoted_fields_keep_delimiters_quotes_and_line_ends():
    data = b'id,title\r\n1,"Hello, ""World""\r\nsecond line"\r\n2,"a\rb"\r\n'
    result = records(data)
    assert [r.fields for r in result] == [["id", "title"], ["1", 'Hello, "World"\r\nsecond line'], ["2", "a\rb"]]
    assert [r.line for r in result] == [1, 2, 4]
    assert [r.next_line for r in result] == [2, 4, 6]  # the CR inside quotes ends a physical line too


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters(delimiter):
    data = f"a{delimiter}b\n1{delimiter}x,y\n".encode()
    assert rows(data, delimiter) == [["a", "b"], ["1", "x,y"]]


def test_ragged_rows_come_out_as_they_are():
    assert rows(b"a,b,c\n1,2\n1,2,3,4\n") == [["a", "b", "c"], ["1", "2"], ["1", "2", "3", "4"]]


def test_blank_lines_are_skipped_but_keep_line_numbers():
    result = records(b"a\n\n1\n\n\n2")
    assert [(r.line, r.fields) for r in result] == [(1, ["a"]), (3, ["1"]), (6, ["2"])]


def test_invalid_utf8_mid_file_spoils_only_its_own_record():
    result = records(b"a,b\n1,ok\n2,\xff\xfebad\n3,ok\n")
    assert [(r.line, r.fields, r.error) for r in result] == [
        (1, ["a", "b"], None),
        (2, ["1", "ok"], None),
        (3, [], "The line is not valid UTF-8"),
        (4, ["3", "ok"], None),
    ]


def test_crlf_split_across_reads_is_one_line_end():
    # The CR ends one read and the LF starts the next: still a single line end, no blank line.
    first = b"a\n" + b"x" * (READ_CHUNK_BYTES - 3) + b"\r"
    result = records(first + b"\nnext\n")
    assert [r.line for r in result] == [1, 2, 3]
    assert result[-1].fields == ["next"]


def test_offsets_let_a_reader_resume_at_a_record_boundary():
    data = b'id,v\n1,a\n2,"multi\nline"\n3,c\n'
    full = records(data)
    resume_at = full[1]
    rest = list(
        read_records(
            io.BytesIO(data[resume_at.end_offset :]).read,
            ",",
            offset=resume_at.end_offset,
            first_line=resume_at.next_line,
        )
    )
    assert [(r.line, r.fields, r.end_offset) for r in rest] == [(r.line, r.fields, r.end_offset) for r in full[2:]]


def test_without_quoting_quotes_are_ordinary_characters_and_a_record_is_a_line():
    result = records(IMDB_HEAD.encode(), "\t", quoting=Quoting.NONE)
    assert [r.fields[2] for r in result[1:]] == [
        "Carmencita",
        '"Rolling in the Deep Dish"',
        '"Unbalanced start',
        'The "Inner" Quote',
    ]
    assert [r.fields[3] for r in result[1:]] == ["1894", "\\N", "2001", "1999"]
    assert [r.line for r in result] == [1, 2, 3, 4, 5]


def test_a_line_invalid_in_another_encoding_is_named_with_it():
    result = records(b"a\n\xed\xb3\xbf\n", encoding="cp1252")
    assert result[1].error == "The line is not valid cp1252"


def test_a_runaway_field_is_an_error_not_a_crash():
    # An unterminated quote swallows the rest of the file; past the csv module's own limit it is an error.
    data = b'id,v\n1,"' + b"x" * (8 * MAX_FIELD_BYTES + 10) + b"\n"
    result = records(data)
    assert result[0].fields == ["id", "v"]
    assert result[1].error is not None and "field larger than field limit" in result[1].error


# --- records past the limit: bounded memory, one pass ---------------------------------------


def chunked_read(*parts: tuple[bytes, int]):
    """A ``read`` over ``parts`` (a piece and how many times it repeats), never held whole in memory."""
    pieces = (piece for piece, times in parts for _ in range(times))
    pending = b""

    def read(size: int) -> bytes:
        nonlocal pending
        while len(pending) < size:
            piece = next(pieces, None)
            if piece is None:
                break
            pending += piece
        data, pending = pending[:size], pending[size:]
        return data

    return read


def test_a_line_past_the_record_limit_is_an_error_read_past_without_being_kept():
    long_line = b"x" * READ_CHUNK_BYTES
    repeats = 256 * 1024**2 // READ_CHUNK_BYTES  # one 256 MiB line, as the upload held
    read = chunked_read((b"id,title\n", 1), (long_line, repeats), (b"\r", 1), (b"\n2,two\n", 1))
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = list(read_records(read, ","))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(r.line, r.fields, r.error) for r in result] == [
        (1, ["id", "title"], None),
        (2, [], f"The record is longer than {MAX_RECORD_BYTES // 1024**2} MiB as written in the file"),
        (3, ["2", "two"], None),
    ]
    assert result[1].end_offset == len(b"id,title\n") + repeats * READ_CHUNK_BYTES + 2  # the CRLF too
    assert result[2].end_offset == result[1].end_offset + len(b"2,two\n")
    assert peak < 3 * MAX_RECORD_BYTES
    assert time.monotonic() - started < 30


def test_a_record_of_many_quoted_fields_over_many_lines_stops_at_the_limit():
    # Every line and every field is short (1 MiB, a quoted line end in each); the record is 40 MiB.
    field = b'"' + b"y" * (MAX_FIELD_BYTES - 8) + b'\n",'
    read = chunked_read((b"id,note\n1,", 1), (field, 40), (b'"end"\n', 1))
    tracemalloc.start()
    try:
        result = list(itertools.islice(read_records(read, ","), 2))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result[1].line, result[1].fields) == (2, [])
    assert result[1].error == f"The record is longer than {MAX_RECORD_BYTES // 1024**2} MiB as written in the file"
    assert peak < 3 * MAX_RECORD_BYTES
