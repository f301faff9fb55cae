"""Receiving ``POST /upload_csv``: the multipart body read part by part, the file streamed into GridFS
chunk by chunk, so that memory does not grow with the file, keeping its first and last bytes to be
checked once the form's options are known (they may follow the file).
"""

import asyncio
import posixpath
import unicodedata
from dataclasses import dataclass

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import BadHttpMessage
from pymongo.asynchronous.database import AsyncDatabase

from ingest_service.disk import UploadRoom
from ingest_service.parsing import HEAD_BYTES, CsvLayout, InvalidCsv, Quoting, inspect_head
from ingest_service.schemas import UploadOptions
from ingest_service.sources import (
    ZIP_TAIL_BYTES,
    Compression,
    UnreadableUpload,
    decompressed_head,
    detect_compression,
    one_file_only,
    zip_member_names,
)
from ingest_service.storage import UploadWriter, delete_upload
from service_common.bodies import parse_model
from service_common.errors import ApiError, bad_parameter

FILE_FIELD = "file"
OPTION_FIELDS = ("mode", "key", "dataset", "encoding", "quoting", "null", "ragged")
MAX_OPTION_BYTES = 1024
READ_CHUNK_BYTES = 256 * 1024
# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
MAX_FILENAME_CHARS = 255


@dataclass(frozen=True)
class StoredFile:
    filename: str
    size_bytes: int
    head: bytes  # the upload's first bytes, as sent
    tail: bytes  # its last bytes, where a zip keeps its directory

    def inspect(self, *, encoding: str | None, quoting: Quoting) -> tuple[Compression, CsvLayout]:
        """How the file is compressed and laid out, judged from its first decompressed bytes; a 400
        saying why for a file that cannot be imported."""
        try:
            compression = detect_compression(self.head)
            if compression is Compression.ZIP and (names := zip_member_names(self.tail)) is not None:
                one_file_only(names)
            content, complete = decompressed_head(
                self.head, compression, complete=len(self.head) == self.size_bytes, limit=HEAD_BYTES
            )
            return compression, inspect_head(content, complete=complete, encoding=encoding, quoting=quoting)
        except (InvalidCsv, UnreadableUpload) as exc:
            raise ApiError(400, str(exc)) from None


@dataclass(frozen=True)
class ReceivedUpload:
    """A stored upload whose options are valid and whose file can be read as ``layout`` says."""

    file_id: str
    filename: str
    size_bytes: int
    options: UploadOptions
    compression: Compression
    layout: CsvLayout


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"The file is larger than the upload limit of {max_bytes} bytes")


async def receive_upload(
    request: web.Request, db: AsyncDatabase, *, file_id: str, max_bytes: int, room: UploadRoom
) -> ReceivedUpload:
    """Stores the ``file`` part as GridFS file ``file_id`` in ``uploads`` and returns it with the form's
    options, checked, and how the file is laid out.

    Every refusal is an ``ApiError`` raised with nothing left in GridFS. An unknown form field is
    refused (a typo such as ``mdoe`` must not import with the default); once one is seen, the file
    is read through without being stored. ``room`` refuses (507) what the
    store's volume cannot hold.
    """
    if request.content_type != "multipart/form-data":
        raise ApiError(415, f"Content-Type must be multipart/form-data, with the CSV file in the field {FILE_FIELD!r}")
    if request.content_length is not None and request.content_length > max_bytes + MULTIPART_OVERHEAD_BYTES:
        raise too_large(max_bytes)
    await room.before(request.content_length)
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, KeyError, BadHttpMessage):
        raise ApiError(400, "Malformed multipart body") from None

    stored: StoredFile | None = None
    file_seen = False
    options: dict[str, str] = {}
    unknown: list[str] = []
    try:
        while (part := await _next_part(reader)) is not None:
            if part.name == FILE_FIELD:
                if file_seen:
                    raise ApiError(400, f"Send one file per upload, in the field {FILE_FIELD!r}")
                file_seen = True
                if unknown:
                    await part.release()
                else:
                    stored = await _store_file(part, db, file_id, max_bytes, room)
            elif part.name in OPTION_FIELDS:
                if part.name in options:
                    raise bad_parameter(
                        part.name, "Given more than once", f"Form field given more than once: {part.name}"
                    )
                options[part.name] = await _read_option(part)
            else:
                unknown.append(part.name or "")
                await part.release()
        if not file_seen:
            raise ApiError(400, f"No file: send the CSV in the multipart field {FILE_FIELD!r}")
        if unknown:
            names = ", ".join(dict.fromkeys(unknown))
            details = [{"field": name, "message": "Unknown form field"} for name in dict.fromkeys(unknown)]
            raise ApiError(400, f"Unknown form field: {names} (known: {', '.join(OPTION_FIELDS)})", details=details)
        assert stored is not None
        checked = parse_model(UploadOptions, options)
        # Off the event loop: decompressing, decoding and guessing a codec take some milliseconds of CPU.
        compression, layout = await asyncio.to_thread(
            stored.inspect, encoding=checked.encoding, quoting=checked.quoting
        )
    except BaseException:
        if stored is not None:
            await delete_upload(db, file_id)
        raise
    return ReceivedUpload(file_id, stored.filename, stored.size_bytes, checked, compression, layout)


async def _next_part(reader: MultipartReader) -> BodyPartReader | None:
    try:
        part = await reader.next()
    except (ValueError, BadHttpMessage):  # BadHttpMessage: a part header with a control character
        raise ApiError(400, "Malformed multipart body") from None
    if part is not None and not isinstance(part, BodyPartReader):
        raise ApiError(400, "Nested multipart bodies are not supported")
    return part


async def _read_option(part: BodyPartReader) -> str:
    value = bytearray()
    while chunk := await part.read_chunk(MAX_OPTION_BYTES):
        value += chunk
        if len(value) > MAX_OPTION_BYTES:
            raise ApiError(400, f"The form field {part.name!r} is too long")
    try:
        return value.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ApiError(400, f"The form field {part.name!r} is not UTF-8 text") from None


async def _store_file(
    part: BodyPartReader, db: AsyncDatabase, file_id: str, max_bytes: int, room: UploadRoom
) -> StoredFile:
    filename = _clean_filename(part.filename)
    upload = UploadWriter(db, file_id, filename, metadata={"content_type": "text/csv"})
    head = bytearray()
    tail = bytearray()
    try:
        while chunk := await part.read_chunk(READ_CHUNK_BYTES):
            if upload.length + len(chunk) > max_bytes:
                raise too_large(max_bytes)
            if len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            tail += chunk
            del tail[:-ZIP_TAIL_BYTES]
            await upload.write(chunk)
            await room.while_storing(upload.length)
        if upload.length == 0:
            raise ApiError(400, "The file is empty")
        await room.finished(upload.length)
        await upload.close()
    except BaseException:
        await upload.abort()
        raise
    return StoredFile(filename, upload.length, bytes(head), bytes(tail))


def _clean_filename(raw: str | None) -> str:
    """The file's own name, without any directory a client put in front of it, nor control or
    formatting characters (a newline, a terminal escape, a right-to-left override) that would
    mislead whoever reads it in a listing or a log."""
    printable = "".join(c for c in (raw or "") if unicodedata.category(c) not in ("Cc", "Cf"))
    name = posixpath.basename(printable.replace("\\", "/")).strip()
    if name in ("", ".", ".."):
        return "upload.csv"
    return name[:MAX_FILENAME_CHARS]
