"""An upload as the CSV reader takes it: decompressed (gzip, or a zip holding one file) and
transcoded to UTF-8 while it streams, never whole in memory or on disk.

The API only sees the upload's first bytes and its last ones as they pass: ``decompressed_head``
and ``zip_member_names`` work on those. The worker reads the whole upload through ``UploadStream``.
"""

import codecs
import gzip
import struct
import zipfile
import zlib
from enum import StrEnum
from typing import BinaryIO

from ingest_service.parsing import READ_CHUNK_BYTES, UTF8

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
ZIP_END_MAGIC = b"PK\x05\x06"
ZIP_DIRECTORY_MAGIC = b"PK\x01\x02"
_ZIP_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_ZIP_DIRECTORY_ENTRY = struct.Struct("<4sHHHHHHIIIHHHHHII")
_ZIP_END = struct.Struct("<4sHHHHIIH")
ZIP64_END_MAGIC = b"PK\x06\x06"
ZIP64_LOCATOR_MAGIC = b"PK\x06\x07"
_ZIP64_END = struct.Struct("<4sQHHIIQQQQ")
_ZIP64_LOCATOR_SIZE = 20
_ZIP_STORED, _ZIP_DEFLATED = 0, 8
_ZIP_ENCRYPTED, _ZIP_SIZES_AFTER_DATA = 0x1, 0x8
# The bytes of an upload's end the API keeps as they pass: a zip's directory of one file fits easily.
ZIP_TAIL_BYTES = 64 * 1024
# A zip made on a Mac carries resource forks beside the file; they are not the data.
_ZIP_IGNORED_PREFIX = "__MACOSX/"
# Undecodable input becomes this lone surrogate, which no strict UTF-8 decoder accepts: the line
# that holds it is then reported as not valid in the file's encoding, as a bad UTF-8 line is.
_UNDECODABLE = "\udcff"
codecs.register_error("ingest.mark", lambda exc: (_UNDECODABLE, exc.end))


class Compression(StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZIP = "zip"


class UnreadableUpload(ValueError):
    """The upload cannot be read to its end (a damaged archive, a zip of several files, more
    decompressed bytes than allowed); the message says why, for the uploader."""


def detect_compression(head: bytes) -> Compression:
    """By the magic bytes, whatever the file is called."""
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(ZIP_MAGIC):
        return Compression.ZIP
    return Compression.NONE


def decompressed_head(head: bytes, compression: Compression, *, complete: bool, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes from the start of the content of an upload whose first bytes are
    ``head`` (the whole upload if ``complete``), and whether they are the whole content."""
    if compression is Compression.NONE:
        return head[:limit], complete and len(head) <= limit
    if compression is Compression.GZIP:
        return _gunzip_head(head, complete=complete, limit=limit)
    return _unzip_head(head, complete=complete, limit=limit)


def _gunzip_head(head: bytes, *, complete: bool, limit: int) -> tuple[bytes, bool]:
    out = bytearray()
    data = head
    try:
        while data and len(out) < limit:
            # One gzip file may hold several members, one after the other.
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out += inflater.decompress(data, limit - len(out))
            if not inflater.eof:
                if complete and len(out) < limit:
                    raise UnreadableUpload("The gzip file is truncated")
                return bytes(out), False
            data = inflater.unused_data
    except zlib.error:
        raise UnreadableUpload("The gzip file is damaged") from None
    return bytes(out), complete and not data


def _unzip_head(head: bytes, *, complete: bool, limit: int) -> tuple[bytes, bool]:
    offset = 0
    while True:
        if len(head) < offset + _ZIP_LOCAL_HEADER.size:
            raise UnreadableUpload("The zip file is truncated")
        magic, _, flags, method, _, _, _, packed_size, _, name_length, extra_length = _ZIP_LOCAL_HEADER.unpack_from(
            head, offset
        )
        if magic != ZIP_MAGIC:
            raise UnreadableUpload("The zip file holds no file")
        start = offset + _ZIP_LOCAL_HEADER.size + name_length + extra_length
        name = head[offset + _ZIP_LOCAL_HEADER.size : offset + _ZIP_LOCAL_HEADER.size + name_length]
        if not name.endswith(b"/"):
            break
        offset = start + packed_size  # a folder: no data
    if flags & _ZIP_ENCRYPTED:
        raise UnreadableUpload("The zip file is encrypted")
    if method == _ZIP_STORED:
        if flags & _ZIP_SIZES_AFTER_DATA:
            raise UnreadableUpload("The zip file's entry has no size; store it deflated")
        content = head[start : start + packed_size]
        return content[:limit], len(content) <= limit and len(content) == packed_size
    if method != _ZIP_DEFLATED:
        raise UnreadableUpload(
            f"The zip entry uses compression method {method}: only stored and deflated are supported"
        )
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(head[start:], limit)
    except zlib.error:
        raise UnreadableUpload("The zip file is damaged") from None
    if not inflater.eof and complete and len(out) < limit:
        raise UnreadableUpload("The zip file is truncated")
    return out, inflater.eof


def zip_member_names(tail: bytes) -> list[str] | None:
    """The files in a zip whose last bytes are ``tail`` (folders and ``__MACOSX/`` left out), or
    None when its directory does not read as one (the worker checks it again in any case).

    A zip of one file has a directory of a few hundred bytes: one that does not fit in
    ``ZIP_TAIL_BYTES`` is refused, so the worker never reads a directory of millions of entries."""
    end = tail.rfind(ZIP_END_MAGIC)
    if end < 0 or len(tail) < end + _ZIP_END.size:
        raise UnreadableUpload("The zip file is truncated")
    _, _, _, _, entries, directory_size, _, _ = _ZIP_END.unpack_from(tail, end)
    directory_end = end
    if entries == 0xFFFF or directory_size == 0xFFFFFFFF:
        locator = end - _ZIP64_LOCATOR_SIZE
        record = locator - _ZIP64_END.size
        magics = (tail[locator : locator + 4], tail[record : record + 4])
        if record < 0 or magics != (ZIP64_LOCATOR_MAGIC, ZIP64_END_MAGIC):
            return None
        entries, directory_size = _ZIP64_END.unpack_from(tail, record)[7:9]
        directory_end = record
    if directory_size > ZIP_TAIL_BYTES - (len(tail) - directory_end):
        raise UnreadableUpload(
            f"The zip file's directory is larger than {ZIP_TAIL_BYTES // 1024} KiB: "
            "a zip must hold exactly one CSV or TSV file"
        )
    position = directory_end - directory_size
    if position < 0:
        raise UnreadableUpload("The zip file is truncated")
    names = []
    for _ in range(entries):
        if tail[position : position + 4] != ZIP_DIRECTORY_MAGIC:
            return None
        fields = _ZIP_DIRECTORY_ENTRY.unpack_from(tail, position)
        name_length, extra_length, comment_length = fields[10], fields[11], fields[12]
        start = position + _ZIP_DIRECTORY_ENTRY.size
        names.append(tail[start : start + name_length].decode("utf-8", "replace"))
        position = start + name_length + extra_length + comment_length
    return [name for name in names if _is_data_file(name)]


def _is_data_file(name: str) -> bool:
    return not name.endswith("/") and not name.startswith(_ZIP_IGNORED_PREFIX)


def one_file_only(names: list[str]) -> None:
    if len(names) != 1:
        listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise UnreadableUpload(f"The zip file must hold exactly one CSV or TSV file; it holds {len(names)}: {listed}")


class UploadStream:
    """The upload's content as UTF-8 bytes, ``read`` a chunk at a time.

    ``position`` counts the bytes handed out; ``skip_to`` discards up to a position (how a run
    after a crash resumes where a seek cannot take it: inside compressed or transcoded data).
    More than ``max_content_bytes`` of decompressed content raises ``UnreadableUpload``.
    """

    def __init__(self, upload: BinaryIO, *, compression: Compression, encoding: str, max_content_bytes: int) -> None:
        self._upload = upload
        self._max_content_bytes = max_content_bytes
        self._content_bytes = 0
        self._compression = compression
        self._content = self._open_content(upload, compression)
        self._decoder = None if encoding == UTF8 else codecs.getincrementaldecoder(encoding)("ingest.mark")
        self._pending = b""
        self.position = 0

    @property
    def seekable(self) -> bool:
        """Whether a position in this stream is a position in the upload itself."""
        return self._compression is Compression.NONE and self._decoder is None

    def uploaded_bytes_read(self) -> int:
        """How far into the upload (as sent, compressed) reading has gone: what progress counts."""
        return self._upload.tell()

    def seek(self, position: int) -> None:
        """Moves to ``position``: by seeking the upload when ``seekable``, else by reading up to it."""
        if self.seekable:
            self._upload.seek(position)
            self.position = position
            return
        while self.position < position:
            chunk = self.read(min(READ_CHUNK_BYTES, position - self.position))
            if not chunk:
                raise UnreadableUpload("The file is shorter than when its import began")

    def read(self, size: int) -> bytes:
        if self._decoder is None:
            # UTF-8 already: the content as it comes, with no buffer of our own in between.
            data = self._read_content(size)
            self.position += len(data)
            return data
        if not self._pending:
            while True:
                raw = self._read_content(size)
                self._pending = self._transcode(raw)
                # A decoder may hold back the start of a character it has not seen the end of.
                if self._pending or not raw:
                    break
        data, self._pending = self._pending[:size], self._pending[size:]
        self.position += len(data)
        return data

    def _read_content(self, size: int) -> bytes:
        try:
            data = self._content.read(size)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
            raise UnreadableUpload(f"The {self._compression} file is damaged: {exc}") from None
        self._content_bytes += len(data)
        # A plain upload is bounded by the upload limit already.
        if self._content_bytes > self._max_content_bytes and self._compression is not Compression.NONE:
            raise UnreadableUpload(f"The decompressed file is larger than the limit of {self._max_content_bytes} bytes")
        return data

    def _transcode(self, data: bytes) -> bytes:
        if self._decoder is None:
            return data
        text = self._decoder.decode(data, final=not data)
        return text.encode("utf-8", "surrogatepass")

    @staticmethod
    def _open_content(upload: BinaryIO, compression: Compression) -> BinaryIO:
        try:
            if compression is Compression.GZIP:
                return gzip.GzipFile(fileobj=upload, mode="rb")
            if compression is Compression.ZIP:
                archive = zipfile.ZipFile(upload)
                names = [info.filename for info in archive.infolist() if _is_data_file(info.filename)]
                one_file_only(names)
                return archive.open(names[0])
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError) as exc:
            raise UnreadableUpload(f"The zip file cannot be read: {exc}") from None
        return upload
