"""Paging, implemented once for every listing (``GET /uploads``, ``GET /users``, ``GET /datasets``,
``GET /get_content``).

The seed's parameters: ``limit`` and a 1-based page ``offset``. Each parameter is given at most once
and unknown ones are refused, each a 400 naming it. ``limit`` defaults to ``DEFAULT_LIMIT`` and is
capped by the listing's maximum (``MAX_LIMIT``, or a setting such as ``CATALOG_MAX_LIMIT``), which
every page states in ``X-Max-Limit`` so that a client walking a listing asks for the largest pages the
server allows. Responses carry ``Link`` URLs that are absolute, as the client reached the gateway.
"""

import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Annotated, ClassVar, Final, TypeVar

from aiohttp import web
from multidict import MultiMapping
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from yarl import URL

from service_common.bodies import parse_model
from service_common.errors import ApiError, bad_parameter

# A page's size when the client names none, and the largest a listing allows unless configured otherwise.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# The header every page carries its listing's maximum ``limit`` in.
MAX_LIMIT_HEADER = "X-Max-Limit"

# Plain digits only (no sign, exponent, spaces or other scripts' digits), and at most 9 of them:
# the skip a page makes must fit the store's 64-bit integers.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")

FORWARDED_SCHEMES = frozenset({"http", "https"})
# A DNS name, IPv4 or bracketed IPv6 address, and a port: the Host header is the client's and goes into our links.
HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")
# Replaced in each link; every other parameter is kept as the client sent it.
PAGE_PARAMETERS = frozenset({"offset", "cursor"})


def _whole_number(value: object) -> object:
    if isinstance(value, str) and not _WHOLE_NUMBER.fullmatch(value):
        raise ValueError("Must be a whole number")
    return value


# A query-string integer: checked as text first, so "1e3", "+5" or " 7" are refused rather than coerced.
QueryInt = Annotated[int, BeforeValidator(_whole_number)]


def repeated_parameter(name: str) -> ApiError:
    return bad_parameter(name, "Given more than once", f"Parameter given more than once: {name}")


def unknown_parameter(name: str) -> ApiError:
    return bad_parameter(name, "Unknown parameter", f"Unknown parameter: {name}")


def single_values(params: MultiMapping[str], known: Collection[str]) -> dict[str, str]:
    """Each parameter's one value; a repeated or unknown parameter is a 400 naming it, never a silent pick."""
    values: dict[str, str] = {}
    for name in params:
        given = params.getall(name)
        if len(given) > 1:
            raise repeated_parameter(name)
        if name not in known:
            raise unknown_parameter(name)
        values[name] = given[0]
    return values


def public_url(request: web.Request) -> URL:
    """The request's URL without its query, with the scheme the gateway says the client used.

    The gateway passes the client's ``Host`` header unchanged and sets ``X-Forwarded-Proto``.
    """
    forwarded = request.headers.get("X-Forwarded-Proto", "").strip().lower()
    scheme = forwarded if forwarded in FORWARDED_SCHEMES else request.scheme
    if not HOST.fullmatch(request.host):
        raise ApiError(400, "Invalid Host header")
    try:
        return URL.build(scheme=scheme, authority=request.host, path=request.path)
    except ValueError:  # a port out of range
        raise ApiError(400, "Invalid Host header") from None


class _ByOffset:
    """``next_cursor`` of a listing that hands out no cursors: its next page is the next offset."""


BY_OFFSET: Final = _ByOffset()


def page_links(
    request: web.Request,
    *,
    limit: int,
    total: int,
    offset: int | None,
    next_cursor: str | _ByOffset | None = BY_OFFSET,
    max_offset_rows: int | None = None,
) -> dict[str, URL]:
    """``first``, ``prev``, ``next`` and ``last``, each only when it exists.

    ``prev`` is only known for an ``offset`` page. A listing with cursors passes ``next_cursor``
    (``None`` on its last page): ``next`` then continues by cursor, so walking it costs the same at
    any depth; otherwise ``next`` is the following ``offset``. ``last`` is left out when it lies
    deeper than an ``offset`` page may go (``max_offset_rows``).
    """
    base = public_url(request)
    kept = [(name, value) for name, value in request.query.items() if name not in PAGE_PARAMETERS]

    def with_page(name: str, value: str | int) -> URL:
        return base.with_query([*kept, (name, str(value))])

    last_page = max(1, math.ceil(total / limit))
    links = {"first": with_page("offset", 1)}
    if offset is not None and offset > 1:
        links["prev"] = with_page("offset", min(offset - 1, last_page))
    if isinstance(next_cursor, str):
        links["next"] = with_page("cursor", next_cursor)
    elif next_cursor is BY_OFFSET and offset is not None and offset < last_page:
        links["next"] = with_page("offset", offset + 1)
    if max_offset_rows is None or (last_page - 1) * limit <= max_offset_rows:
        links["last"] = with_page("offset", last_page)
    return links


def link_header(links: dict[str, URL]) -> str:
    return ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items())


Page = TypeVar("Page", bound="PageQuery")
Row = TypeVar("Row")


class PageQuery(BaseModel):
    """A page of a listing: ``limit`` items from the 1-based page ``offset`` on. Validated with the
    listing's maximum by ``validate_page``; listings with more parameters extend it."""

    model_config = ConfigDict(extra="forbid")

    # How a ``limit`` over the maximum is refused: the words these listings have always answered with.
    OVER_MAXIMUM: ClassVar[str] = "Input should be less than or equal to {maximum}"

    limit: QueryInt = Field(DEFAULT_LIMIT, ge=1)
    offset: QueryInt | None = Field(None, ge=1)

    @field_validator("limit")
    @classmethod
    def _within_maximum(cls, limit: int, info: ValidationInfo) -> int:
        maximum = (info.context or {}).get("max_limit", MAX_LIMIT)
        if limit > maximum:
            raise PydanticCustomError("less_than_equal", cls.OVER_MAXIMUM, {"maximum": maximum})
        return limit

    @property
    def page(self) -> int:
        return self.offset or 1

    @property
    def skip(self) -> int:
        """How many items come before this page."""
        return (self.page - 1) * self.limit

    @property
    def fetch_size(self) -> int:
        """How many items to read for this page: one more tells whether a next page exists."""
        return self.limit + 1


def validate_page(model: type[Page], values: Mapping[str, object], *, max_limit: int = MAX_LIMIT) -> Page:
    """``values`` (each parameter's one value) as ``model``: ``limit`` capped at ``max_limit`` and, when
    not given, ``DEFAULT_LIMIT`` (or ``max_limit``, when that is lower); a 400 naming each bad parameter."""
    defaults = {"limit": min(DEFAULT_LIMIT, max_limit)}
    return parse_model(model, {**defaults, **values}, context={"max_limit": max_limit})


def parse_page_query(params: MultiMapping[str], *, max_limit: int = MAX_LIMIT) -> PageQuery:
    """``limit`` and ``offset`` from a query string; a repeated or unknown parameter is a 400 naming it."""
    return validate_page(PageQuery, single_values(params, PageQuery.model_fields), max_limit=max_limit)


def cut_page(rows: Sequence[Row], limit: int) -> tuple[list[Row], bool]:
    """A page read with ``PageQuery.fetch_size``: its first ``limit`` rows, and whether more follow."""
    return list(rows[:limit]), len(rows) > limit


def page_headers(
    request: web.Request,
    page: PageQuery,
    *,
    total: int,
    max_limit: int = MAX_LIMIT,
    by_cursor: bool = False,
    next_cursor: str | _ByOffset | None = BY_OFFSET,
    max_offset_rows: int | None = None,
) -> dict[str, str]:
    """``X-Total-Count``, ``Link`` (``page_links``), ``X-Max-Limit`` and, when there is one,
    ``X-Next-Cursor``. ``by_cursor``: the page continues a cursor, so it has no page number."""
    links = page_links(
        request,
        limit=page.limit,
        total=total,
        offset=None if by_cursor else page.page,
        next_cursor=next_cursor,
        max_offset_rows=max_offset_rows,
    )
    headers = {"X-Total-Count": str(total), "Link": link_header(links), MAX_LIMIT_HEADER: str(max_limit)}
    if isinstance(next_cursor, str):
        headers["X-Next-Cursor"] = next_cursor
    return headers
