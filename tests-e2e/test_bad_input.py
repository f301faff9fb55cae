"""Hostile and broken input through the gateway, one table per kind: CSV files, JSON bodies, query
strings and path parameters, headers. Every refused request gets its documented 4xx with a JSON error
that names no internals, and leaves the store exactly as it was; a CSV that is acceptable by design is
imported and ends in a clear terminal status.
"""

import dataclasses
import gzip
import io
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import requests
from helpers import bearer, wait_for_status
from openapi_contract import CONTRACT

from catalog_testkit.accounts import create_admin
from catalog_testkit.constants import FINISHED
from catalog_testkit.constants import REPO_ROOT as ROOT
from catalog_testkit.files import zipped
from catalog_testkit.stack import LocalStack

MAX_UPLOAD_BYTES = 3 * 1024 * 1024
HEAD_BYTES = 64 * 1024
MIB = 1024 * 1024
COLLECTIONS = (
    "users", "refresh_tokens", "login_throttle", "import_jobs", "uploads.files", "uploads.chunks", "catalog_items",
)  # fmt: skip
# What no error body may show: stack traces, source paths, driver and framework names, exception classes.
LEAKS = re.compile(r"traceback|file \"|\.py\b|/work/|site-packages|pymongo|bson|aiohttp|pydantic|celery|<html", re.I)
EXCEPTION_CLASS = re.compile(r"\b[A-Z]\w*(Error|Exception)\b")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A stack of its own with a 3 MiB upload limit, so that a file over it is quick to send."""
    env = {
        "INGEST_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
        "GATEWAY_AUTH_RATE": "1000r/s",
        "GATEWAY_AUTH_BURST": "1000",
    }
    with LocalStack(ROOT, tmp_path_factory.mktemp("stack"), env=env) as local:
        yield local


@pytest.fixture(scope="module")
def store(stack):
    with stack.database() as db:
        yield db


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    refresh_token: str
    headers: dict[str, str]
    user_id: str
    # An admin's, for the rows about the admins' endpoints (``Refused.as_admin``).
    admin_headers: dict[str, str]


@pytest.fixture(scope="module")
def account(stack) -> Account:
    name = f"bad_{uuid.uuid4().hex[:12]}"
    user = {"username": name, "email": f"{name}@example.com", "password": "bad-input-password"}
    created = requests.post(f"{stack.url}/signup", json=user, timeout=10)
    assert created.status_code == 201
    tokens = requests.post(f"{stack.url}/login", json={"username": name, "password": user["password"]}, timeout=10)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return Account(
        name,
        user["password"],
        body["refresh_token"],
        {"Authorization": f"Bearer {body['access_token']}"},
        created.json()["user"]["id"],
        bearer(create_admin(stack, "bad_admin")),
    )


# In a row's path: the id of the module's (editor) account, which the admin rows try to change.
ME = "{me}"


# A dataset holding the sample catalog, and a column named with digits only, so that odd values meet a real catalog.
ODD = "odd-values"


@pytest.fixture(scope="module")
def odd_dataset(stack, store, account) -> str:
    content = (
        b"show_id,99999999999999999999,type,title,release_year\n"
        b"o1,x,Movie,Title one,2001\no2,y,TV Show,Title two,2002\no3,z,Movie,Another,2003\n"
    )
    assert upload_and_finish(stack, store, account, content, dataset=ODD)["rows_inserted"] == 3
    return ODD


def counts(store) -> dict[str, int]:
    return {name: store[name].count_documents({}) for name in COLLECTIONS}


@dataclass(frozen=True)
class Refused:
    """One row: the request, and the answer it must get."""

    id: str
    method: str
    path: str
    status: int
    error: str | re.Pattern[str] | None = None  # the whole message, or a pattern it matches
    field: str | None = None  # the field ``details`` must name
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    needs_token: bool = False
    # (name, value): a valid JSON body for the path, with this one field set to this value.
    json_field: tuple[str, Any] | None = None
    # Sent with an admin's token (rather than the editor's, when ``needs_token``).
    as_admin: bool = False


def assert_refused(response: requests.Response, row: Refused) -> None:
    assert response.status_code == row.status, (row.id, response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json"), row.id
    body = response.json()
    assert isinstance(body, dict) and set(body) <= {"error", "details"} and isinstance(body["error"], str), body
    if isinstance(row.error, re.Pattern):
        assert row.error.search(body["error"]), (row.id, body)
    elif row.error is not None:
        assert body["error"] == row.error, (row.id, body)
    if row.field is not None:
        assert row.field in [detail["field"] for detail in body["details"]], (row.id, body)
    assert not LEAKS.search(response.text) and not EXCEPTION_CLASS.search(response.text), (row.id, response.text)
    assert response.headers["X-Request-ID"]
    if CONTRACT.documents(row.method, response.request.url):
        CONTRACT.check(response)


def send(stack, account: Account, row: Refused) -> requests.Response:
    kwargs = dict(row.kwargs)
    if row.needs_token or row.as_admin:
        token = account.admin_headers if row.as_admin else account.headers
        kwargs["headers"] = {**token, **kwargs.get("headers", {})}
    path = row.path.replace(ME, account.user_id)
    if row.json_field is not None:
        # Every other field valid, so that the answer is about this one field alone.
        name, value = row.json_field
        kwargs["json"] = {**valid_body(path, account), name: value}
    return requests.request(row.method, f"{stack.url}{path}", timeout=60, **kwargs)


def check_rows(stack, store, account: Account, row: Refused) -> None:
    before = counts(store)
    response = send(stack, account, row)
    assert_refused(response, row)
    assert counts(store) == before, f"{row.id}: the store changed"


# CSV files


def csv_upload(content: bytes, filename: str = "movies.csv", **fields: str) -> dict[str, Any]:
    return {"files": {"file": (filename, io.BytesIO(content), "text/csv")}, "data": fields}


def rows(count: int, prefix: str) -> bytes:
    return b"".join(b"%s%d,Title %d\n" % (prefix.encode(), n, n) for n in range(count))


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00" + bytes(200)
NOT_UTF8 = re.compile(
    r"^The file is not UTF-8 text \(invalid byte at offset \d+\): name its encoding in the form field 'encoding'"
    r"(; it looks like [\w-]+)?$"
)
NUL_BYTES = "The file is not text: it contains NUL bytes"
CSV_REFUSED = [
    ("empty", b"", 400, "The file is empty"),
    ("only a BOM", b"\xef\xbb\xbf", 400, "The file is empty"),
    ("binary PNG", PNG, 400, NUL_BYTES),
    ("latin-1 text", "show_id,title\ns1,Amélie\n".encode("latin-1"), 400, NOT_UTF8),
    ("UTF-16 without BOM", "show_id,title\ns1,Amélie\n".encode("utf-16-le"), 400, NUL_BYTES),
    ("UTF-16 BE without NULs", "标题导演".encode("utf-16-be"), 400, NOT_UTF8),
    ("invalid UTF-8 mid-file, within the first 64 KiB", b"show_id,title\n" + rows(2000, "m") + b"x,\xc3\x28\n", 400,
     NOT_UTF8),
    ("NUL bytes", b"show_id,title\ns1,a\x00b\n", 400, NUL_BYTES),
    ("a 2 MiB field in the header row", b"a" * (2 * MIB) + b",b\n1,2\n", 400, "The header row is longer than 64 KiB"),
    ("duplicate header names", b"show_id,title,show_id\n1,2,3\n", 400,
     "Column name 'show_id' appears more than once in the header row"),
    ("duplicate header names once trimmed", b"title, title \n1,2\n", 400,
     "Column name 'title' appears more than once in the header row"),
    ("an empty header name", b"show_id,,title\n1,2,3\n", 400, "Column 2 of the header row has no name"),
    ("a blank header name", b"show_id,  ,title\n1,2,3\n", 400, "Column 2 of the header row has no name"),
    ("a trailing delimiter in the header", b"show_id,title,\n1,2,\n", 400, "Column 3 of the header row has no name"),
    ("an operator as a header name", b"show_id,$where\n1,2\n", 400, "Column name '$where' must not start with '$'"),
    ("only newlines", b"\n\n\n\n", 400, "Column 1 of the header row has no name"),
    ("only CRLFs", b"\r\n\r\n", 400, "Column 1 of the header row has no name"),
    ("10,000 columns", ",".join(f"c{n}" for n in range(10_000)).encode() + b"\n" + b"1," * 9_999 + b"1\n", 400,
     "Too many columns: the file has 10000, at most 1000 are allowed (INGEST_MAX_COLUMNS)"),
    ("a zip of two files", zipped({"a.csv": b"a\n1\n", "b.csv": b"b\n2\n"}), 400,
     "The zip file must hold exactly one CSV or TSV file; it holds 2: a.csv, b.csv"),
    ("a truncated gzip", gzip.compress(b"show_id,title\n" + rows(5000, "g"))[:2000], 400, "The gzip file is truncated"),
    ("a gzipped PNG", gzip.compress(PNG), 400, NUL_BYTES),
    ("a file over the upload limit", b"show_id,title\n" + b"x" * MAX_UPLOAD_BYTES, 413,
     f"The file is larger than the upload limit of {MAX_UPLOAD_BYTES} bytes"),
    ("a request over the gateway's limit", b"show_id,title\n" + b"x" * (MAX_UPLOAD_BYTES + MIB), 413,
     "Request body too large"),
]  # fmt: skip
UPLOAD_REFUSED = [
    Refused(f"csv: {name}", "POST", "/upload_csv", status, error, kwargs=csv_upload(content), needs_token=True)
    for name, content, status, error in CSV_REFUSED
] + [
    Refused("form: unknown mode", "POST", "/upload_csv", 400, "Invalid value for: mode", "mode",
            csv_upload(b"show_id,title\n1,a\n", mode="replace"), True),
    Refused("form: operator as mode", "POST", "/upload_csv", 400, "Invalid value for: mode", "mode",
            csv_upload(b"show_id,title\n1,a\n", mode='{"$ne": null}'), True),
    Refused("form: key not in the header", "POST", "/upload_csv", 400,
            "Invalid value for: key (Column 'imdb' is not in the header row)", "key",
            csv_upload(b"show_id,title\n1,a\n", key="imdb"), True),
    Refused("form: a misspelt field", "POST", "/upload_csv", 400,
            re.compile(r"^Unknown form field: mdoe \(known: mode, key, "), "mdoe",
            csv_upload(b"show_id,title\n1,a\n", mdoe="upsert"), True),
    Refused("form: a field given twice", "POST", "/upload_csv", 400, "Form field given more than once: quoting",
            "quoting", {"files": {"file": ("a.csv", b"a\n1\n")}, "data": [("quoting", "none"), ("quoting", "auto")]},
            True),
    Refused("form: unknown quoting", "POST", "/upload_csv", 400, "Invalid value for: quoting", "quoting",
            csv_upload(b"show_id,title\n1,a\n", quoting="csv"), True),
    Refused("form: unknown ragged", "POST", "/upload_csv", 400, "Invalid value for: ragged", "ragged",
            csv_upload(b"show_id,title\n1,a\n", ragged="truncate"), True),
    Refused("form: unknown encoding", "POST", "/upload_csv", 400, "Invalid value for: encoding", "encoding",
            csv_upload(b"show_id,title\n1,a\n", encoding="klingon"), True),
    Refused("form: a codec that is not a text encoding", "POST", "/upload_csv", 400, "Invalid value for: encoding",
            "encoding", csv_upload(b"show_id,title\n1,a\n", encoding="zlib_codec"), True),
    Refused("form: an empty null marker", "POST", "/upload_csv", 400, "Invalid value for: null", "null",
            csv_upload(b"show_id,title\n1,a\n", null="NA,,NULL"), True),
    Refused("form: a file not in the encoding named", "POST", "/upload_csv", 400,
            "The file is not utf-16-be text (invalid byte at offset 0)", None,
            csv_upload(b"\xdc\x00", encoding="utf-16-be"), True),
    Refused("form: key too long", "POST", "/upload_csv", 400, "The form field 'key' is too long", None,
            csv_upload(b"show_id,title\n1,a\n", key="k" * 2000), True),
    Refused("form: no file part", "POST", "/upload_csv", 400, "No file: send the CSV in the multipart field 'file'",
            None, {"files": {"document": ("a.csv", b"a\n1\n")}}, True),
    Refused("form: two files", "POST", "/upload_csv", 400, "Send one file per upload, in the field 'file'", None,
            {"files": [("file", ("a.csv", b"a\n1\n")), ("file", ("b.csv", b"a\n1\n"))]}, True),
    Refused("form: a control character in a part header", "POST", "/upload_csv", 400, "Malformed multipart body",
            None, {"data": b'--x\r\nContent-Disposition: form-data; name="file"; filename="a\x01.csv"\r\n\r\n'
                           b"a\n1\n\r\n--x--\r\n",
                   "headers": {"Content-Type": "multipart/form-data; boundary=x"}}, True),
    Refused("form: not multipart inside", "POST", "/upload_csv", 400, "Malformed multipart body", None,
            {"data": b"show_id,title\n1,a\n", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}, True),
    Refused("form: no boundary", "POST", "/upload_csv", 400, "Malformed multipart body", None,
            {"data": b"x", "headers": {"Content-Type": "multipart/form-data"}}, True),
]  # fmt: skip


@pytest.mark.parametrize("row", UPLOAD_REFUSED, ids=lambda row: row.id)
def test_an_unusable_upload_is_refused_and_nothing_is_stored(stack, store, account, row):
    check_rows(stack, store, account, row)


# JSON bodies

JSON_FIELDS = {
    "/signup": ("username", "email", "password"),
    "/login": ("username", "password"),
    "/token/refresh": ("refresh_token",),
    "/logout": ("refresh_token",),
}
WRONG_TYPES = {
    "operator $ne": {"$ne": None},
    "operator $gt": {"$gt": ""},
    "operator $regex": {"$regex": ".*"},
    "operator $where": {"$where": "sleep(1000)"},
    "a number": 12345678,
    "a float": 1.5,
    "an array": ["a", "b"],
    "an empty array": [],
    "a boolean": True,
    "null": None,
}
JSON = {"Content-Type": "application/json"}


def valid_body(path: str, account: Account) -> dict[str, Any]:
    if path.startswith("/users/"):
        return {"disabled": False}
    if path == "/signup":
        name = f"new_{uuid.uuid4().hex[:10]}"
        return {"username": name, "email": f"{name}@example.com", "password": "a-fine-password"}
    if path == "/login":
        return {"username": account.username, "password": account.password}
    return {"refresh_token": account.refresh_token}


def json_rows() -> list[Refused]:
    table = []
    for path in JSON_FIELDS:
        token = path == "/logout"
        table += [
            Refused(
                f"{path}: malformed",
                "POST",
                path,
                400,
                "Request body is not valid JSON",
                None,
                {"data": b'{"username": "a",', "headers": JSON},
                token,
            ),
            Refused(
                f"{path}: single quotes",
                "POST",
                path,
                400,
                "Request body is not valid JSON",
                None,
                {"data": b"{'username': 'a'}", "headers": JSON},
                token,
            ),
            Refused(
                f"{path}: empty body",
                "POST",
                path,
                400,
                "Request body is not valid JSON",
                None,
                {"data": b"", "headers": JSON},
                token,
            ),
            Refused(
                f"{path}: an array",
                "POST",
                path,
                400,
                "Request body must be a JSON object",
                None,
                {"data": b'[{"username": "a"}]', "headers": JSON},
                token,
            ),
            Refused(
                f"{path}: a string",
                "POST",
                path,
                400,
                "Request body must be a JSON object",
                None,
                {"data": b'"username"', "headers": JSON},
                token,
            ),
            Refused(
                f"{path}: a number",
                "POST",
                path,
                400,
                "Request body must be a JSON object",
                None,
                {"data": b"42", "headers": JSON},
                token,
            ),
            Refused(
                f"{path}: null",
                "POST",
                path,
                400,
                "Request body must be a JSON object",
                None,
                {"data": b"null", "headers": JSON},
                token,
            ),
            Refused(
                f"{path}: invalid UTF-8",
                "POST",
                path,
                400,
                "Request body is not valid UTF-8",
                None,
                {"data": b'{"username": "caf\xe9"}', "headers": JSON},
                token,
            ),
            Refused(
                f"{path}: nested 60,000 deep",
                "POST",
                path,
                400,
                "Request body is nested too deeply",
                None,
                {"data": b"[" * 60_000, "headers": JSON},
                token,
            ),
            Refused(
                f"{path}: over 64 KiB",
                "POST",
                path,
                413,
                "Request body too large",
                None,
                {"data": b'{"username": "' + b"a" * 70_000 + b'"}', "headers": JSON},
                token,
            ),
            Refused(
                f"{path}: every field missing",
                "POST",
                path,
                400,
                re.compile("^Invalid value for: "),
                JSON_FIELDS[path][0],
                {"json": {}},
                token,
            ),
        ]
        for name in JSON_FIELDS[path]:
            for label, value in WRONG_TYPES.items():
                row = Refused(
                    f"{path}: {name} is {label}",
                    "POST",
                    path,
                    400,
                    f"Invalid value for: {name}",
                    name,
                    needs_token=token,
                    json_field=(name, value),
                )
                table.append(row)
    return table


def account_update_rows() -> list[Refused]:
    """``PATCH /users/{id}`` as an admin, on a real account: every bad body is a 400 and changes nothing."""
    path = f"/users/{ME}"
    table = [
        Refused(
            f"PATCH /users: {label}", "PATCH", path, status, error, None, {"data": data, "headers": JSON}, as_admin=True
        )
        for label, data, status, error in [
            ("malformed", b'{"roles": [', 400, "Request body is not valid JSON"),
            ("empty body", b"", 400, "Request body is not valid JSON"),
            ("an array", b'[{"disabled": true}]', 400, "Request body must be a JSON object"),
            ("null", b"null", 400, "Request body must be a JSON object"),
            ("invalid UTF-8", b'{"roles": ["caf\xe9"]}', 400, "Request body is not valid UTF-8"),
            ("nested 60,000 deep", b"[" * 60_000, 400, "Request body is nested too deeply"),
            ("over 64 KiB", b'{"roles": ["' + b"a" * 70_000 + b'"]}', 413, "Request body too large"),
        ]
    ]
    table += [
        Refused(
            "PATCH /users: nothing to change",
            "PATCH",
            path,
            400,
            "Invalid value for: body",
            "body",
            {"json": {}},
            as_admin=True,
        ),
        Refused(
            "PATCH /users: a misspelt field",
            "PATCH",
            path,
            400,
            re.compile("^Invalid value for: .*role"),
            "role",
            {"json": {"role": "admin"}},
            as_admin=True,
        ),
        Refused(
            "PATCH /users: an editor",
            "PATCH",
            path,
            403,
            "Forbidden: this needs the admin role",
            None,
            {"json": {"roles": ["admin"]}},
            needs_token=True,
        ),
    ]
    for label, value in WRONG_TYPES.items():
        if label not in ("an array", "an empty array"):
            table.append(
                Refused(
                    f"PATCH /users: roles is {label}",
                    "PATCH",
                    path,
                    400,
                    None,
                    "roles",
                    json_field=("roles", value),
                    as_admin=True,
                )
            )
        if label != "a boolean":
            table.append(
                Refused(
                    f"PATCH /users: disabled is {label}",
                    "PATCH",
                    path,
                    400,
                    None,
                    "disabled",
                    json_field=("disabled", value),
                    as_admin=True,
                )
            )
    for label, value, field in [
        ("no roles", [], "roles"),
        ("an unknown role", ["owner"], "roles.0"),
        ("an operator as a role", [{"$ne": None}], "roles.0"),
        ("a role's case changed", ["Admin"], "roles.0"),
        ("four roles", ["viewer"] * 4, "roles"),
    ]:
        table.append(
            Refused(
                f"PATCH /users: roles is {label}",
                "PATCH",
                path,
                400,
                None,
                field,
                json_field=("roles", value),
                as_admin=True,
            )
        )
    return table


@pytest.mark.parametrize("row", account_update_rows(), ids=lambda row: row.id)
def test_a_bad_account_update_is_refused_and_nothing_changes(stack, store, account, row):
    before = store["users"].find_one({"_id": account.user_id})
    check_rows(stack, store, account, row)
    assert store["users"].find_one({"_id": account.user_id}) == before


@pytest.mark.parametrize("row", json_rows(), ids=lambda row: row.id)
def test_a_bad_json_body_is_refused_and_nothing_is_stored(stack, store, account, row):
    check_rows(stack, store, account, row)


# Query strings and path parameters

NUMBERS = {
    "negative": "-1", "huge": "99999999999999999999", "fractional": "1.5", "non-numeric": "abc", "empty": "",
    "exponent": "1e3", "padded": " 5", "plus-signed": "+5", "non-ASCII digit": "\u0663",
}  # fmt: skip


def query_rows() -> list[Refused]:
    table = []
    for path, token in (("/get_content", False), ("/uploads", True), ("/users", True)):
        admin = path == "/users"
        for name in ("limit", "offset"):
            for label, value in NUMBERS.items():
                table.append(
                    Refused(
                        f"{path} {name} {label}",
                        "GET",
                        path,
                        400,
                        None,
                        name,
                        {"params": {name: value}},
                        token,
                        as_admin=admin,
                    )
                )
            table.append(
                Refused(
                    f"{path} {name} repeated",
                    "GET",
                    path,
                    400,
                    f"Parameter given more than once: {name}",
                    name,
                    {"params": [(name, "1"), (name, "2")]},
                    token,
                    as_admin=admin,
                )
            )
        # One paging implementation: both listings refuse a parameter they do not know, naming it.
        unknown = {"params": {"limt": "5"}}
        table.append(
            Refused(
                f"{path} unknown", "GET", path, 400, "Unknown parameter: limt", "limt", unknown, token, as_admin=admin
            )
        )
    table += [
        Refused(
            "/users limit over 100", "GET", "/users", 400, None, "limit", {"params": {"limit": "101"}}, as_admin=True
        ),
        Refused(
            "/users as an editor", "GET", "/users", 403, "Forbidden: this needs the admin role", None, needs_token=True
        ),
    ]
    catalog = [
        ("cursor negative", {"cursor": "-1"}, 400, "cursor"),
        ("cursor huge", {"cursor": "9" * 500}, 400, "cursor"),
        ("cursor fractional", {"cursor": "1.5"}, 400, "cursor"),
        ("cursor forged", {"cursor": "eyJzIjoxfQ.AAAA"}, 400, "cursor"),
        ("cursor empty", {"cursor": ""}, 400, "cursor"),
        ("cursor with offset", {"cursor": "x", "offset": "2"}, 400, "offset"),
        ("sort fractional", {"sort": "1.5"}, 400, "sort"),
        ("sort empty", {"sort": ""}, 400, "sort"),
        ("sort only a minus", {"sort": "-"}, 400, "sort"),
        ("sort a path", {"sort": "row.title"}, 400, "sort"),
        ("sort an operator", {"sort": "$natural"}, 400, "sort"),
        ("sort over 64 characters", {"sort": "a" * 65}, 400, "sort"),
        ("q empty", {"q": ""}, 400, "q"),
        ("q over 256 characters", {"q": "a" * 257}, 400, "q"),
        ("type over 1024 characters", {"type": "a" * 1025}, 400, "type"),
        ("type and filter[type]", {"type": "Movie", "filter[type]": "Movie"}, 400, "type"),
        ("an operator in a filter name", {"filter[title][$ne]": "x"}, 400, "filter[title][$ne]"),
        ("a path in a filter name", {"filter[a.b]": "x"}, 400, "filter[a.b]"),
        ("an empty filter name", {"filter[]": "x"}, 400, "filter[]"),
        ("17 filters", {f"filter[c{n}]": "x" for n in range(17)}, 400, "filter"),
        ("an operator-like parameter", {"type[$ne]": "Movie"}, 400, "type[$ne]"),
        ("an unknown parameter", {"page": "2"}, 400, "page"),
        ("offset too deep for a search", {"offset": "100000", "limit": "100", "q": "a"}, 400, "offset"),
        ("sort by a column the dataset lacks", {"sort": "-1", "dataset": ODD}, 400, "sort"),
        (
            "filter a column the dataset lacks",
            {"filter[no such column]": "x", "dataset": ODD},
            400,
            "filter[no such column]",
        ),
        ("an unknown dataset", {"dataset": "no-such-dataset"}, 404, None),
        ("a dataset name with capitals", {"dataset": "Films"}, 400, "dataset"),
    ]
    table += [
        Refused(f"/get_content {label}", "GET", "/get_content", status, None, name, {"params": params})
        for label, params, status, name in catalog
    ]
    for parameter in ("cursor", "sort", "q", "type", "filter[title]"):
        table.append(
            Refused(
                f"/get_content {parameter} repeated",
                "GET",
                "/get_content",
                400,
                f"Parameter given more than once: {parameter}",
                parameter,
                {"params": [(parameter, "1"), (parameter, "2")]},
            )
        )
    malformed = "Malformed task id: expected a UUID"
    malformed_ids = (
        ("negative", "-1"),
        ("huge", "9" * 40),
        ("fractional", "1.5"),
        ("non-numeric", "abc"),
        ("an operator without braces", "%24ne"),
        ("not UTF-8", "%FF"),
        ("a UUID with junk", f"{uuid.uuid4()}x"),
    )
    for method, prefix in (("GET", "/fetch_csv_status/"), ("DELETE", "/uploads/")):
        for label, value in malformed_ids:
            row = Refused(f"{method} {prefix} {label}", method, prefix + value, 400, malformed, needs_token=True)
            table.append(row)
        table += [
            Refused(f"{method} {prefix} empty", method, prefix, 404, "Not found", needs_token=True),
            # Braces never match a path segment: no such route.
            Refused(
                f"{method} {prefix} an operator",
                method,
                prefix + "%7B%22%24ne%22%3Anull%7D",
                404,
                "Not found",
                needs_token=True,
            ),
            Refused(f"{method} {prefix} NUL", method, prefix + "%00", 400, "Bad request", needs_token=True),
            Refused(
                f"{method} {prefix} above the root",
                method,
                prefix + "..%2F..%2Fme",
                400,
                "Bad request",
                needs_token=True,
            ),
            Refused(
                f"{method} {prefix} 10,000 characters",
                method,
                prefix + "a" * 10_000,
                414,
                "Request URI too long",
                needs_token=True,
            ),
        ]
    # The revert of an import: the task id is the path's second segment of three.
    revert = "POST /uploads/{}/revert"
    for label, value in malformed_ids:
        table.append(Refused(f"{revert} {label}", "POST", f"/uploads/{value}/revert", 400, malformed, needs_token=True))
    table += [
        Refused(
            f"{revert} an unknown id",
            "POST",
            f"/uploads/{uuid.uuid4()}/revert",
            404,
            "No such upload",
            needs_token=True,
        ),
        Refused(
            f"{revert} an operator",
            "POST",
            "/uploads/%7B%22%24ne%22%3Anull%7D/revert",
            404,
            "Not found",
            needs_token=True,
        ),
        Refused(f"{revert} NUL", "POST", "/uploads/%00/revert", 400, "Bad request", needs_token=True),
        Refused(
            f"{revert} 10,000 characters",
            "POST",
            "/uploads/" + "a" * 10_000 + "/revert",
            414,
            "Request URI too long",
            needs_token=True,
        ),
        Refused(
            f"{revert} with a body",
            "POST",
            f"/uploads/{uuid.uuid4()}/revert",
            404,
            "No such upload",
            kwargs={"json": {"$where": "1"}},
            needs_token=True,
        ),
    ]
    malformed_user = "Malformed user id: expected a UUID"
    for label, value in (
        ("negative", "-1"),
        ("non-numeric", "abc"),
        ("an operator without braces", "%24ne"),
        ("not UTF-8", "%FF"),
        ("a UUID with junk", f"{uuid.uuid4()}x"),
    ):
        table.append(
            Refused(
                f"PATCH /users/ {label}",
                "PATCH",
                "/users/" + value,
                400,
                malformed_user,
                kwargs={"json": {"disabled": True}},
                as_admin=True,
            )
        )
    table += [
        Refused(
            "PATCH /users/ empty",
            "PATCH",
            "/users/",
            404,
            "Not found",
            kwargs={"json": {"disabled": True}},
            as_admin=True,
        ),
        Refused(
            "PATCH /users/ an unknown id",
            "PATCH",
            f"/users/{uuid.uuid4()}",
            404,
            "No such user",
            kwargs={"json": {"disabled": True}},
            as_admin=True,
        ),
        Refused("PATCH /users/ NUL", "PATCH", "/users/%00", 400, "Bad request", as_admin=True),
        Refused("PATCH /users/ above the root", "PATCH", "/users/..%2F..%2Fme", 400, "Bad request", as_admin=True),
        Refused(
            "PATCH /users/ 10,000 characters",
            "PATCH",
            "/users/" + "a" * 10_000,
            414,
            "Request URI too long",
            as_admin=True,
        ),
    ]
    missing = "No catalog item with this id"
    table += [
        Refused("/contents/ negative", "GET", "/contents/-1", 404, missing),
        Refused("/contents/ huge", "GET", "/contents/" + "9" * 40, 404, missing),
        Refused("/contents/ an operator", "GET", "/contents/%7B%22%24ne%22%3Anull%7D", 404, missing),
        Refused("/contents/ not UTF-8", "GET", "/contents/%FF%FE", 404, missing),
        Refused("/contents/ NUL", "GET", "/contents/%00", 400, "Bad request"),
        Refused("/contents/ above the root", "GET", "/contents/..%2F..%2Fme", 400, "Bad request"),
        Refused("/contents/ 10,000 characters", "GET", "/contents/" + "a" * 10_000, 414, "Request URI too long"),
    ]
    return table


@pytest.mark.parametrize("row", query_rows(), ids=lambda row: row.id)
def test_a_bad_query_or_path_parameter_is_refused_and_nothing_is_stored(stack, store, account, odd_dataset, row):
    check_rows(stack, store, account, row)


@pytest.mark.parametrize(
    ("params", "finds_nothing"),
    [({"sort": "-release_year"}, False), ({"sort": "9" * 20}, False), ({"type": "-1"}, True), ({"type": ""}, False),
     ({"q": "1.5"}, True), ({"q": ".*"}, True), ({"q": "%00"}, True), ({"filter[title]": '{"$ne": null}'}, True),
     ({"filter[title]": "^Title"}, True), ({"filter[release_year]": "-1"}, True), ({"type": "\x00"}, True)],
)  # fmt: skip
def test_odd_but_valid_catalog_values_are_plain_text_matches(stack, store, odd_dataset, params, finds_nothing):
    """Strings are matched literally: an operator or a regex in a value finds nothing, and writes nothing."""
    before = counts(store)
    response = requests.get(f"{stack.url}/get_content", params={"dataset": ODD, **params}, timeout=10)
    assert response.status_code == 200, response.text
    CONTRACT.check(response)
    if finds_nothing:
        assert response.json() == []
    assert counts(store) == before


# Headers

AUTHORIZATIONS = [
    ("missing", None, 401, "Authorization required"),
    ("empty", "", 401, None),
    ("scheme only", "Bearer", 401, "Authorization header must be 'Bearer <token>'"),
    ("scheme and a space", "Bearer ", 401, None),
    ("Basic", "Basic dXNlcjpwYXNz", 401, "Authorization header must be 'Bearer <token>'"),
    ("two tokens", "Bearer a.b.c d.e.f", 401, "Authorization header must be 'Bearer <token>'"),
    ("not a JWT", "Bearer not-a-jwt", 401, "Invalid or expired token"),
    ("an operator", 'Bearer {"$ne": null}', 401, "Authorization header must be 'Bearer <token>'"),
    ("not UTF-8", "Bearer \xff\xfe.a.b", 401, "Authorization header must be 'Bearer <token>'"),
    ("a control character", "Bearer a\x7fb", 400, "Bad request: a header holds a control character"),
    ("over 8 KiB", "Bearer " + "a" * 9000, 400, "Bad request"),
]
PROTECTED = [
    ("GET", "/me", {}),
    ("POST", "/logout", {"json": {"refresh_token": "whatever"}}),
    ("POST", "/upload_csv", csv_upload(b"show_id,title\nh1,a\n")),
    ("GET", f"/fetch_csv_status/{uuid.uuid4()}", {}),
    ("GET", "/uploads", {}),
    ("DELETE", f"/uploads/{uuid.uuid4()}", {}),
    ("POST", f"/uploads/{uuid.uuid4()}/revert", {}),
    ("GET", "/users", {}),
    ("PATCH", f"/users/{uuid.uuid4()}", {"json": {"disabled": True}}),
]


def header_rows() -> list[Refused]:
    table = []
    for method, path, kwargs in PROTECTED:
        for label, value, status, error in AUTHORIZATIONS:
            headers = {} if value is None else {"Authorization": value}
            table.append(
                Refused(
                    f"{method} {path.split('/')[1]}: Authorization {label}",
                    method,
                    path,
                    status,
                    error,
                    kwargs={**kwargs, "headers": headers},
                )
            )
    json_415 = "Content-Type must be application/json"
    for path in JSON_FIELDS:
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "text/json",
            None,
        ):
            headers = {} if content_type is None else {"Content-Type": content_type}
            table.append(
                Refused(
                    f"{path}: Content-Type {content_type}",
                    "POST",
                    path,
                    415,
                    json_415,
                    kwargs={"data": b'{"username": "a"}', "headers": headers},
                    needs_token=path == "/logout",
                )
            )
        table.append(
            Refused(
                f"{path}: Content-Type with a control character",
                "POST",
                path,
                400,
                "Bad request: a header holds a control character",
                kwargs={"data": b"{}", "headers": {"Content-Type": "application/json\x01"}},
            )
        )
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/merge-patch+json", None):
        headers = {} if content_type is None else {"Content-Type": content_type}
        table.append(
            Refused(
                f"PATCH /users: Content-Type {content_type}",
                "PATCH",
                f"/users/{ME}",
                415,
                json_415,
                kwargs={"data": b'{"disabled": true}', "headers": headers},
                as_admin=True,
            )
        )
    upload_415 = re.compile("^Content-Type must be multipart/form-data")
    for content_type in (
        "application/json",
        "text/csv",
        "application/x-www-form-urlencoded",
        "multipart/mixed; boundary=x",
        None,
    ):
        headers = {} if content_type is None else {"Content-Type": content_type}
        table.append(
            Refused(
                f"/upload_csv: Content-Type {content_type}",
                "POST",
                "/upload_csv",
                415,
                upload_415,
                kwargs={"data": b"show_id,title\n1,a\n", "headers": headers},
                needs_token=True,
            )
        )
    return table


@pytest.mark.parametrize("row", header_rows(), ids=lambda row: row.id)
def test_a_bad_header_is_refused_and_nothing_is_stored(stack, store, account, row):
    check_rows(stack, store, account, row)


def test_a_header_no_service_reads_with_a_control_character_never_reaches_one(stack):
    response = requests.get(f"{stack.url}/get_content", headers={"X-Anything": "a\x01b"}, timeout=10)
    assert response.status_code == 200
    CONTRACT.check(response)


# CSV files that are acceptable by design: last, so that the counts above run over an almost empty store.


def upload_and_finish(stack, store, account: Account, content: bytes, **form) -> dict:
    """Uploads a file the API accepts and waits for its import to end, its stored file gone."""
    form = csv_upload(content, **form)
    response = requests.post(f"{stack.url}/upload_csv", headers=account.headers, timeout=60, **form)
    assert response.status_code == 202, response.text
    CONTRACT.check(response)
    return wait_finished(stack, store, account, response.json()["task_id"])


def wait_finished(stack, store, account: Account, task_id: str) -> dict:
    """The job once it has ended and its stored file is gone, so that nothing is written after it."""

    def ended_and_cleaned_up(job: dict) -> bool:
        return job["status"] in FINISHED and not store["uploads.files"].count_documents({"_id": task_id})

    return wait_for_status(stack.url, account.headers, task_id, ended_and_cleaned_up, 60, CONTRACT.check)


@dataclass(frozen=True)
class Accepted:
    id: str
    content: bytes
    processed: int
    inserted: int
    failed: int = 0
    warnings: int = 0
    error: str | None = None  # a row error message expected among ``errors``
    form: dict[str, str] = dataclasses.field(default_factory=dict)


def accepted_rows() -> list[Accepted]:
    # Keys unique to this run, so that no row is counted as a duplicate of an earlier one.
    run = uuid.uuid4().hex[:8]
    pad = rows(3000, f"p{run}-")  # past the first 64 KiB, which the API checks before accepting
    assert len(pad) > HEAD_BYTES
    wide = ",".join(f"c{n}" for n in range(1_000)).encode()  # INGEST_MAX_COLUMNS, the most a dataset may have
    return [
        Accepted("header only", b"show_id,title\n", 0, 0),
        Accepted("header only, no line end", b"show_id,title", 0, 0),
        Accepted(
            "ragged rows: a short one and a long one refused",
            f"show_id,title,year\nr{run}1,a,1\nr{run}2,b\nr{run}3,c,3,extra\n".encode(),
            3,
            1,
            2,
            0,
            "The row has 2 fields, the header has 3",
        ),
        Accepted(
            "ragged rows with ragged=pad: the short one padded, the long one refused",
            f"show_id,title,year\nq{run}1,a,1\nq{run}2,b\nq{run}3,c,3,extra\n".encode(),
            3,
            2,
            1,
            1,
            "The row has 4 fields, the header has 3",
            {"ragged": "pad"},
        ),
        Accepted("UTF-16 with BOM", f"show_id,title\nw{run}1,Amélie\n".encode("utf-16"), 1, 1),
        Accepted(
            "an IMDB-style TSV, gzipped, with an unbalanced quote",
            gzip.compress(f'tconst\ttitle\tstartYear\nt{run}1\t"Open\t1999\nt{run}2\tNo year\t\\N\n'.encode()),
            2,
            2,
        ),
        Accepted(
            "a 2 MiB field in a row",
            f"show_id,title\nf{run}1,".encode() + b"a" * (2 * MIB) + f"\nf{run}2,ok\n".encode(),
            2,
            1,
            1,
        ),
        Accepted("1,000 columns", wide + b"\n" + ",".join(f"{run}{n}" for n in range(1_000)).encode() + b"\n", 1, 1),
        Accepted(
            "invalid UTF-8 past the first 64 KiB",
            b"show_id,title\n" + pad.replace(b"p", b"u") + f"u{run}x,caf".encode() + b"\xe9\n",
            3001,
            3000,
            1,
            0,
            "The line is not valid UTF-8",
        ),
        Accepted(
            "a NUL byte past the first 64 KiB (valid UTF-8, kept as text)",
            b"show_id,title\n" + pad.replace(b"p", b"n") + f"n{run}x,a".encode() + b"\x00b\n",
            3001,
            3001,
        ),
    ]


@pytest.mark.parametrize("case", accepted_rows(), ids=lambda case: case.id)
def test_a_file_acceptable_by_design_is_imported_and_ends_clearly(stack, store, account, case):
    items_before = store["catalog_items"].count_documents({})
    # Each file into a dataset of its own: keyed as it is, never refused for the default dataset's key.
    dataset = f"accepted-{uuid.uuid4().hex[:8]}"
    job = upload_and_finish(stack, store, account, case.content, dataset=dataset, **case.form)
    assert job["status"] == "Success", job
    assert job["progress"] == 100
    assert (job["rows_processed"], job["rows_inserted"], job["rows_failed"], job["warnings"]) == (
        case.processed,
        case.inserted,
        case.failed,
        case.warnings,
    ), job
    if case.error:
        assert case.error in [error["message"] for error in job["errors"]], job["errors"]
    assert store["catalog_items"].count_documents({}) == items_before + case.inserted


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\win.ini", "win.ini"),
        ("../movies\n2026-01-01 INFO forged log line\x1b[31m.csv", "movies2026-01-01 INFO forged log line[31m.csv"),
        ("evil\u202egpj.csv", "evilgpj.csv"),
        ("..", "upload.csv"),
    ],
)
def test_a_file_name_with_directories_and_control_characters_is_stored_sanitised(stack, store, account, sent, stored):
    # In the RFC 5987 form, the one way a client can send control characters in a part header.
    disposition = f"form-data; name=\"file\"; filename*=UTF-8''{quote(sent, safe='')}"
    content = f"show_id,title\nfn{uuid.uuid4().hex},a\n"
    body = f"--x\r\nContent-Disposition: {disposition}\r\nContent-Type: text/csv\r\n\r\n{content}\r\n--x--\r\n".encode()
    headers = {**account.headers, "Content-Type": "multipart/form-data; boundary=x"}
    response = requests.post(f"{stack.url}/upload_csv", data=body, headers=headers, timeout=30)
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    assert store["import_jobs"].find_one({"_id": task_id})["filename"] == stored
    job = wait_finished(stack, store, account, task_id)
    assert (job["status"], job["filename"]) == ("Success", stored)
