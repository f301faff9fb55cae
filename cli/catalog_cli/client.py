"""The catalog platform's HTTP API, as plain methods over one ``httpx.Client``.

Every non-2xx answer and every transport failure becomes an ``ApiError`` whose
text is one readable line, so that the commands never show a traceback.
"""

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from catalog_cli import __version__

DEFAULT_URL = "http://127.0.0.1:5000"
# Status reads and catalog pages are quick; an upload may take long, but each of its writes must progress.
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
UPLOAD_TIMEOUT = httpx.Timeout(600.0, connect=5.0, write=120.0)
# Where a watch stops: an import that ended, or the revert of one that ended (``Reverting`` goes on).
TERMINAL_STATUSES = frozenset({"Success", "Failure", "Cancelled", "Reverted"})
# An export streams as long as it has rows; the server sends each chunk of them within its time budget
# (at most 55 s), so a longer silence means it is gone.
EXPORT_TIMEOUT = httpx.Timeout(120.0, connect=5.0)


class ApiError(Exception):
    """A failed call, described in one line; ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, status: int | None = None, *, with_token: bool = False) -> None:
        super().__init__(message)
        self.status = status
        # A 401 to a request that carried a token means the token was refused, not the password.
        self.with_token = with_token


@dataclass(frozen=True)
class Page:
    """One page of a listing: the items and the paging headers that came with them."""

    items: list[dict[str, Any]]
    total: int | None
    next_cursor: str | None
    links: dict[str, str]
    # The largest ``limit`` the listing takes (``X-Max-Limit``); None from a server that does not say.
    max_limit: int | None = None


class ProgressReader:
    """A binary file that reports how far it has been read, so an upload can show bytes sent."""

    def __init__(self, file: BinaryIO, on_progress: Callable[[int], None]) -> None:
        self._file = file
        self._on_progress = on_progress

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._on_progress(self._file.tell())
        return chunk

    # httpx sizes the multipart body from these, so the request has a Content-Length and is never chunked.
    def fileno(self) -> int:
        return self._file.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


class CatalogClient:
    def __init__(self, base_url: str, token: str | None = None, *, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url
        headers = {"User-Agent": f"catalogctl/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=TIMEOUT, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "CatalogClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # auth-service
    def signup(self, username: str, email: str, password: str) -> dict[str, Any]:
        return self._call("POST", "/signup", json={"username": username, "email": email, "password": password}).json()

    def login(self, username: str, password: str) -> dict[str, Any]:
        return self._call("POST", "/login", json={"username": username, "password": password}).json()

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        return self._call("POST", "/token/refresh", json={"refresh_token": refresh_token}).json()

    def logout(self, refresh_token: str) -> dict[str, Any]:
        return self._call("POST", "/logout", json={"refresh_token": refresh_token}).json()

    def me(self) -> dict[str, Any]:
        return self._call("GET", "/me").json()

    def users(self, *, limit: int | None = None, offset: int | None = None) -> Page:
        return self._page("/users", _without_none({"limit": limit, "offset": offset}))

    def find_user(self, name_or_id: str) -> dict[str, Any]:
        """The account with this username (any case), e-mail or id, walking the admins' listing."""
        wanted = name_or_id.strip().lower()
        for user in self._every_item("/users"):
            names = (str(user.get("username", "")).lower(), str(user.get("email", "")).lower(), user.get("id"))
            if wanted in names:
                return user
        raise ApiError(f"No user {name_or_id!r}", 404)

    def update_user(self, user_id: str, **changes: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/users/{_path_segment(user_id)}", json=changes).json()

    # ingest-service
    def upload(
        self,
        path: Path,
        *,
        mode: str | None = None,
        key: str | None = None,
        dataset: str | None = None,
        encoding: str | None = None,
        quoting: str | None = None,
        null: str | None = None,
        ragged: str | None = None,
        on_progress: Callable[[int], None] = lambda sent: None,
    ) -> dict[str, Any]:
        """Streams ``path`` as the multipart field ``file``, never reading it whole into memory.
        The options not given are left out, so the service's defaults (and its detection) apply."""
        options = {
            "mode": mode,
            "key": key,
            "dataset": dataset,
            "encoding": encoding,
            "quoting": quoting,
            "null": null,
            "ragged": ragged,
        }
        fields = {name: value for name, value in options.items() if value is not None}
        with path.open("rb") as file:
            upload = ProgressReader(file, on_progress)
            response = self._call(
                "POST",
                "/upload_csv",
                data=fields,
                files={"file": (path.name, upload, "text/csv")},
                timeout=UPLOAD_TIMEOUT,
            )
        return response.json()

    def status(self, task_id: str) -> dict[str, Any]:
        return self._call("GET", f"/fetch_csv_status/{_path_segment(task_id)}").json()

    def uploads(self, *, limit: int | None = None, offset: int | None = None) -> Page:
        return self._page("/uploads", _without_none({"limit": limit, "offset": offset}))

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/uploads/{_path_segment(task_id)}").json()

    def revert(self, task_id: str) -> dict[str, Any]:
        return self._call("POST", f"/uploads/{_path_segment(task_id)}/revert").json()

    # catalog-service
    def contents(self, params: Mapping[str, Any]) -> Page:
        return self._page("/get_content", params)

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset: the listing's pages followed to the end."""
        return list(self._every_item("/datasets"))

    def facets(self, dataset: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{_path_segment(dataset)}/facets", params=params).json()

    def export(self, dataset: str, params: Mapping[str, Any], out: BinaryIO) -> int:
        """Streams ``/datasets/{dataset}/export`` into ``out`` as it arrives; returns the bytes written.
        An answer the server cut short (its time budget, a broken connection) is an ``ApiError``."""
        path = f"/datasets/{_path_segment(dataset)}/export"
        written, started = 0, False
        try:
            with self._http.stream(
                "GET", path, params=params, timeout=EXPORT_TIMEOUT, headers={"Accept": "*/*"}
            ) as response:
                started = True
                if response.is_error:
                    response.read()
                    raise ApiError(
                        describe_error(response),
                        response.status_code,
                        with_token="Authorization" in self._http.headers,
                    )
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    written += len(chunk)
        except httpx.TimeoutException:
            raise ApiError(f"{self.base_url} did not answer in time (GET {path}) after {written:,} bytes") from None
        except httpx.TransportError as exc:
            if started:
                raise ApiError(
                    f"The export was cut short after {written:,} bytes (the server stopped it, or the connection "
                    "broke); narrow it with filters and try again"
                ) from None
            reason = str(exc) or type(exc).__name__
            raise ApiError(f"Cannot reach {self.base_url}: {reason}") from None
        return written

    def all_contents(self, params: Mapping[str, Any]) -> Iterator[Page]:
        """Every page of a listing, following ``X-Next-Cursor``: the cost of a page does not grow with depth.
        Without a ``limit`` in ``params``, the pages after the first are the largest the server takes
        (its ``X-Max-Limit``, whatever ``CATALOG_MAX_LIMIT`` it runs with)."""
        query = dict(params)
        while True:
            page = self.contents(query)
            yield page
            if not page.next_cursor or not page.items:
                return
            query = {**query, "cursor": page.next_cursor}
            query.pop("offset", None)
            if "limit" not in params and page.max_limit is not None:
                query["limit"] = page.max_limit

    def _every_item(self, path: str) -> Iterator[dict[str, Any]]:
        """Every item of a listing paged by ``offset``, in the largest pages the server takes: its first
        page (of the server's default size) says how large that is (``X-Max-Limit``; a server that does
        not say keeps its default), and the items after it are read in pages of that size."""
        first = self._page(path, None)
        yield from first.items
        if "next" not in first.links or not first.items:
            return
        limit = first.max_limit or len(first.items)
        # Pages of ``limit`` from the one holding the first item not read yet, less the items read.
        offset, skip = divmod(len(first.items), limit)
        offset += 1
        while True:
            page = self._page(path, {"limit": limit, "offset": offset})
            yield from page.items[skip:]
            if "next" not in page.links or not page.items:
                return
            offset, skip = offset + 1, 0

    def _page(self, path: str, params: Mapping[str, Any] | None) -> Page:
        response = self._call("GET", path, params=params)
        items = response.json()
        if not isinstance(items, list):
            raise ApiError(f"Unexpected answer from {path}: expected a JSON array", response.status_code)
        return Page(
            items=items,
            total=_whole_number(response.headers.get("X-Total-Count")),
            next_cursor=response.headers.get("X-Next-Cursor") or None,
            links={rel: str(link["url"]) for rel, link in response.links.items()},
            max_limit=_whole_number(response.headers.get("X-Max-Limit")) or None,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(f"{self.base_url} did not answer in time ({method} {path})") from None
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise ApiError(f"Cannot reach {self.base_url}: {reason}") from None
        if response.is_error:
            raise ApiError(
                describe_error(response), response.status_code, with_token="Authorization" in self._http.headers
            )
        return response


def describe_error(response: httpx.Response) -> str:
    """The API's ``{"error", "details"}`` body as one line, or the HTTP reason when the body is not that."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
        details = body.get("details") if isinstance(body.get("details"), list) else []
        # Leave out what the message already says: "Invalid value for: key (Column 'x' is not in the header row)".
        parts = [part for part in map(_describe_detail, details) if part and part[1] not in message]
        if parts:
            message += " (" + "; ".join(f"{field}: {text}" if field else text for field, text in parts) + ")"
    else:
        message = response.reason_phrase or "Request failed"
    message = " ".join(message.split())
    if retry_after := response.headers.get("Retry-After"):
        message = f"{message}, retry after {retry_after}s"
    return f"{message} [HTTP {response.status_code}]"


def _describe_detail(detail: object) -> tuple[str, str] | None:
    if isinstance(detail, dict):
        text = detail.get("message") or detail.get("msg")
        return (str(detail.get("field") or ""), str(text)) if text else None
    return ("", str(detail)) if detail else None


def _path_segment(value: str) -> str:
    # A task id is a UUID; anything else is still sent (the API answers 400), but never as more than one segment.
    return quote(value, safe="")


def _whole_number(header: str | None) -> int | None:
    return int(header) if header and header.isascii() and header.isdigit() else None


def _without_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}
