"""The seed's paging parameters, shared by every listing: ``limit`` and a 1-based page ``offset``."""

import re
from typing import Annotated

from pydantic import BeforeValidator

# Plain digits only (no sign, exponent, spaces or other scripts' digits), and at most 9 of them:
# the skip a page makes must fit the store's 64-bit integers.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def _whole_number(value: object) -> object:
    if isinstance(value, str) and not _WHOLE_NUMBER.fullmatch(value):
        raise ValueError("Must be a whole number")
    return value


# A query-string integer: checked as text first, so "1e3", "+5" or " 7" are refused rather than coerced.
QueryInt = Annotated[int, BeforeValidator(_whole_number)]
