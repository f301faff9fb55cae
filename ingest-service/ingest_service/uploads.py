"""Receiving ``POST /upload_csv``: the multipart body read part by part, the file checked on its first
64 KiB and streamed into GridFS chunk by chunk, so that memory does not grow with the file.
"""

import posixpath
import unicodedata
from dataclasses import dataclass

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import BadHttpMessage
from pymongo.asynchronous.database import AsyncDatabase

from ingest_service.disk import UploadRoom
from ingest_service.parsing import HEAD_BYTES, CsvLayout, InvalidCsv, inspect_head
from ingest_service.storage import UploadWriter, delete_upload
from service_common.errors import ApiError

FILE_FIELD = "file"
OPTION_FIELDS = ("mode", "key")
MAX_OPTION_BYTES = 1024
READ_CHUNK_BYTES = 256 * 1024
# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
MAX_FILENAME_CHARS = 255


@dataclass(frozen=True)
class ReceivedUpload:
    filename: str
    size_bytes: int
    layout: CsvLayout
    options: dict[str, str]


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"The file is larger than the upload limit of {max_bytes} bytes")


async def receive_upload(
    request: web.Request, db: AsyncDatabase, *, file_id: str, max_bytes: int, room: UploadRoom
) -> ReceivedUpload:
    """Stores the ``file`` part as GridFS file ``file_id`` in ``uploads`` and returns it with the form's options.

    Every refusal is an ``ApiError`` raised with nothing left in GridFS; ``room`` refuses (507) what the
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

    stored: ReceivedUpload | None = None
    options: dict[str, str] = {}
    try:
        while (part := await _next_part(reader)) is not None:
            if part.name == FILE_FIELD:
                if stored is not None:
                    raise ApiError(400, f"Send one file per upload, in the field {FILE_FIELD!r}")
                stored = await _store_file(part, db, file_id, max_bytes, room)
            elif part.name in OPTION_FIELDS:
                options[part.name] = await _read_option(part)
            else:
                await part.release()
    except BaseException:
        if stored is not None:
            await delete_upload(db, file_id)
        raise
    if stored is None:
        raise ApiError(400, f"No file: send the CSV in the multipart field {FILE_FIELD!r}")
    return ReceivedUpload(stored.filename, stored.size_bytes, stored.layout, options)


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
) -> ReceivedUpload:
    # The head is checked before anything reaches GridFS, so most refusals cost no cleanup at all.
    head = bytearray()
    at_eof = False
    while len(head) < HEAD_BYTES:
        chunk = await part.read_chunk(READ_CHUNK_BYTES)
        if not chunk:
            at_eof = True
            break
        head += chunk
    if len(head) > max_bytes:
        raise too_large(max_bytes)
    try:
        layout = inspect_head(bytes(head[:HEAD_BYTES]), complete=at_eof)
    except InvalidCsv as exc:
        raise ApiError(400, str(exc)) from None

    filename = _clean_filename(part.filename)
    upload = UploadWriter(db, file_id, filename, metadata={"content_type": "text/csv"})
    try:
        await upload.write(bytes(head))
        del head
        while chunk := await part.read_chunk(READ_CHUNK_BYTES):
            if upload.length + len(chunk) > max_bytes:
                raise too_large(max_bytes)
            await upload.write(chunk)
            await room.while_storing(upload.length)
        await room.finished(upload.length)
        await upload.close()
    except BaseException:
        await upload.abort()
        raise
    return ReceivedUpload(filename, upload.length, layout, {})


def _clean_filename(raw: str | None) -> str:
    """The file's own name, without any directory a client put in front of it, nor control or
    formatting characters (a newline, a terminal escape, a right-to-left override) that would
    mislead whoever reads it in a listing or a log."""
    printable = "".join(c for c in (raw or "") if unicodedata.category(c) not in ("Cc", "Cf"))
    name = posixpath.basename(printable.replace("\\", "/")).strip()
    if name in ("", ".", ".."):
        return "upload.csv"
    return name[:MAX_FILENAME_CHARS]
