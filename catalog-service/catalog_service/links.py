"""Absolute page URLs as the client sees them through the gateway, and the ``Link`` header made of them."""

import math
import re

from aiohttp import web
from yarl import URL

from service_common.errors import ApiError

FORWARDED_SCHEMES = frozenset({"http", "https"})
# A DNS name, IPv4 or bracketed IPv6 address, and a port: the Host header is the client's and goes into our links.
HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")
# Replaced in each link; every other parameter is kept as the client sent it.
PAGE_PARAMETERS = frozenset({"offset", "cursor"})


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


def page_links(
    request: web.Request,
    *,
    limit: int,
    total: int,
    max_offset_rows: int | None,
    offset: int | None,
    next_cursor: str | None,
) -> dict[str, URL]:
    """``first``, ``prev``, ``next`` and ``last``, each only when it exists.

    ``prev`` is only known for an ``offset`` page; ``next`` always continues by cursor,
    so walking ``next`` costs the same at any depth; ``last`` is left out when it lies
    deeper than an ``offset`` page may go (``max_offset_rows``; None: any depth).
    """
    base = public_url(request)
    kept = [(name, value) for name, value in request.query.items() if name not in PAGE_PARAMETERS]

    def with_page(name: str, value: str | int) -> URL:
        return base.with_query([*kept, (name, str(value))])

    last_page = max(1, math.ceil(total / limit))
    links = {"first": with_page("offset", 1)}
    if offset is not None and offset > 1:
        links["prev"] = with_page("offset", min(offset - 1, last_page))
    if next_cursor is not None:
        links["next"] = with_page("cursor", next_cursor)
    if max_offset_rows is None or (last_page - 1) * limit <= max_offset_rows:
        links["last"] = with_page("offset", last_page)
    return links


def link_header(links: dict[str, URL]) -> str:
    return ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items())
