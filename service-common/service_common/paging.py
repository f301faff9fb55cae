"""The seed's paging parameters, shared by every listing: ``limit`` and a 1-based page ``offset``."""

import re
from typing import Annotated

from multidict import MultiMapping
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from yarl import URL

from service_common.bodies import parse_model
from service_common.errors import ApiError

# Plain digits only (no sign, exponent, spaces or other scripts' digits), and at most 9 of them:
# the skip a page makes must fit the store's 64-bit integers.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def _whole_number(value: object) -> object:
    if isinstance(value, str) and not _WHOLE_NUMBER.fullmatch(value):
        raise ValueError("Must be a whole number")
    return value


# A query-string integer: checked as text first, so "1e3", "+5" or " 7" are refused rather than coerced.
QueryInt = Annotated[int, BeforeValidator(_whole_number)]


class PageQuery(BaseModel):
    """The seed's paging of a short listing (uploads, users): ``offset`` is a 1-based page number."""

    model_config = ConfigDict(extra="ignore")

    limit: QueryInt = Field(20, ge=1, le=100)
    offset: QueryInt = Field(1, ge=1)

    @property
    def skip(self) -> int:
        return (self.offset - 1) * self.limit


def parse_page_query(params: MultiMapping[str]) -> PageQuery:
    """``limit`` and ``offset`` from a query string; a repeated one is a 400, not a silent pick."""
    for name in ("limit", "offset"):
        if len(params.getall(name, [])) > 1:
            details = [{"field": name, "message": "Given more than once"}]
            raise ApiError(400, f"Parameter given more than once: {name}", details=details)
    return parse_model(PageQuery, {name: params[name] for name in ("limit", "offset") if name in params})


def page_link_header(url: URL, page: PageQuery, total: int) -> str:
    """GitHub-style ``Link`` relations between pages, leaving out any that does not exist."""
    last = max(1, -(-total // page.limit))
    pages = {"first": 1, "prev": page.offset - 1, "next": page.offset + 1, "last": last}
    links = []
    for rel, number in pages.items():
        if 1 <= number <= last:
            target = url.relative().update_query(limit=page.limit, offset=number)
            links.append(f'<{target}>; rel="{rel}"')
    return ", ".join(links)
