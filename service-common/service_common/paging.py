"""Paging, implemented once for every listing (``GET /uploads``, ``GET /get_content``).

The seed's parameters: ``limit`` and a 1-based page ``offset``. Each parameter is given at most once
and unknown ones are refused, each a 400 naming it. Responses carry ``Link`` URLs that are absolute,
as the client reached the gateway.
"""

import math
import re
from collections.abc import Collection
from typing import Annotated, Final

from aiohttp import web
from multidict import MultiMapping
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from yarl import URL

from service_common.bodies import parse_model
from service_common.errors import ApiError, bad_parameter

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


class PageQuery(BaseModel):
    """The seed's paging of a short listing (uploads, users): ``offset`` is a 1-based page number."""

    model_config = ConfigDict(extra="forbid")

    limit: QueryInt = Field(20, ge=1, le=100)
    offset: QueryInt = Field(1, ge=1)

    @property
    def skip(self) -> int:
        return (self.offset - 1) * self.limit


def parse_page_query(params: MultiMapping[str]) -> PageQuery:
    """``limit`` and ``offset`` from a query string; a repeated or unknown parameter is a 400 naming it."""
    return parse_model(PageQuery, single_values(params, PageQuery.model_fields))
