"""Opaque, HMAC-signed ``cursor`` tokens: where a page ended, bound to the query that produced it.

A token is ``<payload>.<signature>``, both base64url without padding. The payload
holds the last item's sort value and ``seq`` and a fingerprint of the query's
order, filters and ``q``, so a token cannot be forged, edited, or replayed
against another query. A text sort value longer than ``MAX_CURSOR_TEXT_CHARS`` is
kept cut to that length (``"c": 1``): the item's ``seq`` names the position, and
the query reads the whole value back from the item (``queries.after``), so a
cursor stays short whatever the values it sorts by.
"""

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from service_common.catalog_values import StoredValue, is_stored_value

# Values a catalog row holds, and so what a sort position can be.
SortValue = StoredValue

MAX_TOKEN_LENGTH = 2048
# Even written as \uXXXX escapes (6 bytes each), this many characters leave a token well under its limit.
MAX_CURSOR_TEXT_CHARS = 128
_SIGNATURE_CONTEXT = b"catalog-service cursor v1\x00"


class InvalidCursor(ValueError):
    """The token was not issued by this service for this query."""


@dataclass(frozen=True)
class CursorPosition:
    """The last item of a page, in its order: its sort value and its ``seq`` (the tie-breaker)."""

    sort_value: SortValue
    seq: int
    # The sort value is the first MAX_CURSOR_TEXT_CHARS of a longer text: the item at ``seq`` holds it whole.
    cut: bool = False


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, position: CursorPosition, query_fingerprint: str) -> str:
        fields = {"f": query_fingerprint, "v": position.sort_value, "s": position.seq}
        if isinstance(position.sort_value, str) and len(position.sort_value) > MAX_CURSOR_TEXT_CHARS:
            fields |= {"v": position.sort_value[:MAX_CURSOR_TEXT_CHARS], "c": 1}
        payload = json.dumps(
            fields,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        encoded = _b64encode(payload)
        return f"{encoded}.{self._sign(encoded)}"

    def decode(self, token: str, query_fingerprint: str) -> CursorPosition:
        encoded, dot, signature = token.partition(".")
        if len(token) > MAX_TOKEN_LENGTH or not dot:
            raise InvalidCursor("Malformed cursor")
        # Compared as bytes: compare_digest refuses non-ASCII str, and a tampered token may contain any text.
        if not hmac.compare_digest(signature.encode("utf-8"), self._sign(encoded).encode("ascii")):
            raise InvalidCursor("Cursor is invalid or was altered")
        try:
            payload = json.loads(_b64decode(encoded))
        except (binascii.Error, ValueError):
            raise InvalidCursor("Malformed cursor") from None
        if not isinstance(payload, dict) or not {"f", "v", "s"} <= payload.keys():
            raise InvalidCursor("Malformed cursor")
        seq, sort_value, cut = payload["s"], payload["v"], payload.get("c") == 1
        if not isinstance(seq, int) or isinstance(seq, bool) or not is_stored_value(sort_value):
            raise InvalidCursor("Malformed cursor")
        if cut and not isinstance(sort_value, str):
            raise InvalidCursor("Malformed cursor")
        if payload["f"] != query_fingerprint:
            raise InvalidCursor("Cursor belongs to a different sort, filter or q: repeat them as they were")
        return CursorPosition(sort_value=sort_value, seq=seq, cut=cut)

    def _sign(self, encoded_payload: str) -> str:
        mac = hmac.new(self._secret, _SIGNATURE_CONTEXT + encoded_payload.encode("utf-8"), hashlib.sha256)
        return _b64encode(mac.digest())
