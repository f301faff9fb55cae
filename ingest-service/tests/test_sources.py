"""Compressed and transcoded uploads on their own: the API's look at the first and last bytes, and
the stream the worker reads, resumed from a position as after a crash."""

import gzip
import io
import struct
import zipfile

import pytest

from catalog_testkit.files import zipped
from ingest_service.parsing import HEAD_BYTES
from ingest_service.sources import (
    ZIP_TAIL_BYTES,
    Compression,
    UnreadableUpload,
    UploadStream,
    decompressed_head,
    detect_compression,
    zip_member_names,
)

CONTENT = b"tconst\tprimaryTitle\n" + b"".join(b"tt%07d\tTitle %d\n" % (n, n) for n in range(20_000))


def read_all(stream: UploadStream, size: int = 1000) -> bytes:
    out = bytearray()
    while chunk := stream.read(size):
        out += chunk
    return bytes(out)


def stream(data: bytes, compression: Compression, encoding: str = "utf-8", limit: int = 10**9) -> UploadStream:
    return UploadStream(io.BytesIO(data), compression=compression, encoding=encoding, max_content_bytes=limit)


def test_compression_is_known_by_its_magic_bytes_not_the_name():
    assert detect_compression(gzip.compress(b"a\n")) is Compression.GZIP
    assert detect_compression(zipped({"a.csv": b"a\n"})) is Compression.ZIP
    assert detect_compression(b"a,b\n") is Compression.NONE


@pytest.mark.parametrize(
    "upload",
    [
        gzip.compress(CONTENT),
        gzip.compress(CONTENT[:1000]) + gzip.compress(CONTENT[1000:]),  # two gzip members
        zipped({"data/": b"", "data/title.basics.tsv": CONTENT}),
        zipped({"title.basics.tsv": CONTENT}, zipfile.ZIP_STORED),
    ],
)
def test_the_api_reads_the_decompressed_head_of_the_first_bytes(upload):
    compression = detect_compression(upload)
    head, complete = decompressed_head(upload[:HEAD_BYTES], compression, complete=False, limit=HEAD_BYTES)
    assert head == CONTENT[: len(head)] and len(head) > 1000
    assert not complete


def test_a_small_compressed_file_is_complete_in_its_head():
    head, complete = decompressed_head(gzip.compress(b"a\n1\n"), Compression.GZIP, complete=True, limit=HEAD_BYTES)
    assert (head, complete) == (b"a\n1\n", True)


def test_damaged_and_truncated_archives_are_refused():
    with pytest.raises(UnreadableUpload, match="gzip file is truncated"):
        decompressed_head(gzip.compress(CONTENT)[:500], Compression.GZIP, complete=True, limit=HEAD_BYTES)
    with pytest.raises(UnreadableUpload, match="gzip file is damaged"):
        decompressed_head(b"\x1f\x8b\x08\x00garbage-garbage", Compression.GZIP, complete=True, limit=HEAD_BYTES)


def test_a_zip_must_hold_exactly_one_file():
    two = zipped({"a.csv": b"a\n", "b.csv": b"b\n", "__MACOSX/._a.csv": b"x"})
    assert zip_member_names(two[-ZIP_TAIL_BYTES:]) == ["a.csv", "b.csv"]
    assert zip_member_names(zipped({"d/": b"", "d/a.tsv": b"a\n", "__MACOSX/d/._a.tsv": b"x"})) == ["d/a.tsv"]
    with pytest.raises(UnreadableUpload, match=r"exactly one CSV or TSV file; it holds 2: a\.csv, b\.csv"):
        stream(two, Compression.ZIP)


@pytest.mark.parametrize(
    ("upload", "compression", "encoding"),
    [
        (gzip.compress(CONTENT), Compression.GZIP, "utf-8"),
        (zipped({"t.tsv": CONTENT}), Compression.ZIP, "utf-8"),
        (CONTENT.decode().encode("utf-16"), Compression.NONE, "utf-16"),
        (gzip.compress(CONTENT.decode().encode("utf-16")), Compression.GZIP, "utf-16"),
    ],
)
def test_the_worker_reads_utf8_from_any_position_as_a_resumed_run_does(upload, compression, encoding):
    assert read_all(stream(upload, compression, encoding)) == CONTENT
    resumed = stream(upload, compression, encoding)
    assert not resumed.seekable
    resumed.seek(123_457)
    assert resumed.position == 123_457
    assert read_all(resumed, 777) == CONTENT[123_457:]


def test_a_plain_utf8_upload_is_sought_directly():
    plain = stream(CONTENT, Compression.NONE)
    assert plain.seekable
    plain.seek(5000)
    assert plain.read(10) == CONTENT[5000:5010] and plain.uploaded_bytes_read() == 5010


def test_progress_counts_the_compressed_bytes_read():
    upload = gzip.compress(CONTENT)
    reader = stream(upload, Compression.GZIP)
    reader.read(1000)
    assert 0 < reader.uploaded_bytes_read() <= len(upload)
    read_all(reader)
    assert reader.uploaded_bytes_read() == len(upload)


def test_more_decompressed_bytes_than_allowed_end_the_stream():
    bomb = gzip.compress(b"\0" * 5_000_000)
    reader = stream(bomb, Compression.GZIP, limit=1_000_000)
    with pytest.raises(UnreadableUpload, match="larger than the limit of 1000000 bytes"):
        read_all(reader, 64 * 1024)
    assert reader.position <= 1_000_000


def test_bytes_invalid_in_the_encoding_spoil_only_their_line():
    # A lone low surrogate is not UTF-16: the transcoded line is then not UTF-8 either.
    upload = "a\n".encode("utf-16-le") + b"\x00\xdc\n\x00" + "b\n".encode("utf-16-le")
    out = read_all(stream(upload, Compression.NONE, "utf-16-le"))
    lines = out.split(b"\n")
    assert lines[0] == b"a" and lines[2] == b"b"
    with pytest.raises(UnicodeDecodeError):
        lines[1].decode("utf-8")


def zip64(files: dict[str, bytes], folders: int = 0) -> bytes:
    """``zipped(files)`` ending as a zip64 archive does: a zip64 end record and locator, and the
    classic end record's counts all 0xFFFF."""
    data = zipped({**{f"f{n}/": b"" for n in range(folders)}, **files})
    end = data.rfind(b"PK\x05\x06")
    entries, size, offset = struct.unpack_from("<HII", data, end + 10)
    record = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, end, 1)
    classic = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:end] + record + locator + classic


def test_a_zip64_directory_is_read_and_held_to_the_same_limit():
    assert zip_member_names(zip64({"a.csv": b"a\n1\n"})) == ["a.csv"]
    with pytest.raises(UnreadableUpload, match="directory is larger than 64 KiB"):
        zip_member_names(zip64({"a.csv": b"a\n1\n"}, folders=4000)[-ZIP_TAIL_BYTES:])
