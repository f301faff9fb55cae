"""The web page at / and the API docs at /docs, in a real browser: Debian's Chromium driven by Playwright.

The browser is the system's (`apt-get install chromium`); Playwright never downloads one. Every
element is found by its label or role, so these tests also prove that the page can be used with a
screen reader's names. Screenshots land in test-artifacts/.
"""

import gzip
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from openapi_spec_validator import validate
from pages import EN_DASH, open_page, screenshot
from playwright.sync_api import Browser, Page, expect
from yarl import URL

from catalog_testkit.accounts import create_admin
from catalog_testkit.constants import REPO_ROOT as ROOT
from catalog_testkit.files import write_movies_csv
from catalog_testkit.paging import walk_pages
from catalog_testkit.polling import poll
from catalog_testkit.processes import free_port, start_process, stop_process
from catalog_testkit.stack import TEST_GATEWAY_LIMITS, LocalStack

IMPORT_TIMEOUT_MS = 60_000


@pytest.fixture
def page(browser: Browser, stack) -> Iterator[Page]:
    with open_page(browser, stack.url) as page:
        yield page


def catalog_ids(base_url: str, **params: str) -> list[str]:
    """Every id of the catalog in the API's own order, walked by cursor."""
    return walk_pages(URL(f"{base_url}/get_content").with_query({"limit": "100", **params})).ids()


def shown_ids(page: Page) -> list[str]:
    return page.locator("#catalog-table tbody tr").evaluate_all("rows => rows.map(row => row.dataset.id)")


def sign_up_in_the_page(page: Page) -> str:
    username = f"web_{uuid.uuid4().hex[:10]}"
    signup = page.get_by_role("form", name="Create an account")
    signup.get_by_label("Username").fill(username)
    signup.get_by_label("E-mail").fill(f"{username}@example.com")
    signup.get_by_label("Password").fill("web-password-1")
    signup.get_by_role("button", name="Sign up").click()
    expect(page.locator("#session-user")).to_have_text(username)
    return username


def upload_in_the_page(page: Page, csv_path: Path) -> None:
    page.get_by_label("CSV file", exact=True).set_input_files(str(csv_path))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#import-status")).to_have_text("Success", timeout=IMPORT_TIMEOUT_MS)


# The API docs


def test_openapi_yaml_is_served_as_a_valid_openapi_31_description(stack):
    response = requests.get(f"{stack.url}/openapi.yaml", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/yaml")
    assert response.headers["X-Request-ID"]
    spec = yaml.safe_load(response.text)
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    assert response.text == (ROOT / "gateway" / "openapi.yaml").read_text()


def test_every_documented_operation_is_routed_by_the_gateway(stack):
    """No documented path falls through to the gateway's catch-all 404: the description matches the routes."""
    spec = yaml.safe_load((ROOT / "gateway" / "openapi.yaml").read_text())
    for path, operations in spec["paths"].items():
        concrete = path.replace("{task_id}", str(uuid.uuid4())).replace("{id}", "no-such-item")
        concrete = concrete.replace("{user_id}", str(uuid.uuid4())).replace("{name}", "no-such-dataset")
        for method in operations:
            response = requests.request(method.upper(), f"{stack.url}{concrete}", timeout=10)
            assert response.status_code != 405, (method, path)
            if response.status_code == 404:
                assert response.json() != {"error": "Not found"}, f"{method.upper()} {path} is not routed"
            documented = operations[method]["responses"]
            assert str(response.status_code) in documented or f"{str(response.status_code)[0]}XX" in documented, (
                method,
                path,
                response.status_code,
            )


def test_the_docs_page_lists_every_operation_from_vendored_assets(page: Page, stack):
    spec = yaml.safe_load((ROOT / "gateway" / "openapi.yaml").read_text())
    documented = {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations}

    page.goto("/docs")
    expect(page.get_by_role("heading", name="Catalog platform API")).to_be_visible()
    operations = page.locator(".opblock")
    expect(operations).to_have_count(len(documented))
    shown = {
        (block.locator(".opblock-summary-method").inner_text(), block.locator(".opblock-summary-path").inner_text())
        for block in operations.all()
    }
    assert shown == documented

    # An operation opens to its parameters and responses, all rendered from /openapi.yaml.
    page.locator(".opblock-summary", has_text="/get_content").click()
    expect(page.locator(".opblock-body").get_by_text("X-Next-Cursor").first).to_be_visible()
    screenshot(page, "docs")


# Static routes


def test_the_page_is_served_at_slash_and_unknown_paths_stay_json_404s(stack):
    response = requests.get(f"{stack.url}/", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Request-ID"]
    assert "<h1>Catalog</h1>" in response.text

    for path in (
        "/index.html",
        "/static/",
        "/static/missing.js",
        "/docs/",
        "/docs/assets/",
        "/web/index.html",
        "/gateway/openapi.yaml",
        "/no/such/page.html",
    ):
        response = requests.get(f"{stack.url}{path}", timeout=10)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"].startswith("application/json"), path
        assert response.json() == {"error": "Not found"}, path


def test_the_gateway_serves_its_files_from_a_checkout_in_a_folder_only_its_user_may_enter(stack, tmp_path):
    """A checkout in a 0700 home (root's, usually): nginx's workers must still read the page and the docs."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    checkout = home / "checkout"
    shutil.copytree(ROOT / "scripts", checkout / "scripts")
    shutil.copytree(ROOT / "gateway", checkout / "gateway", ignore=shutil.ignore_patterns("@scarf"))
    assert (home.stat().st_mode & 0o777) == 0o700
    port = free_port()
    env = {**os.environ, **stack.env, "DATA_DIR": str(home / "data"), "GATEWAY_PORT": str(port)}
    env.pop("GATEWAY_STATIC_ROOT", None)
    gateway = start_process([str(checkout / "scripts" / "run-gateway")], log_path=tmp_path / "gateway.log", env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        poll(
            lambda: requests.get(f"{url}/healthz", timeout=2).status_code == 200,
            within=30,
            what="gateway",
            ignore=(requests.RequestException,),
        )
        for path in ("/", "/docs", "/openapi.yaml", "/static/app.js", "/docs/assets/swagger-ui.css"):
            response = requests.get(f"{url}{path}", timeout=10)
            assert response.status_code == 200, (path, response.status_code, (tmp_path / "gateway.log").read_text())
        assert requests.get(f"{url}/openapi.yaml", timeout=10).text == (ROOT / "gateway" / "openapi.yaml").read_text()
    finally:
        stop_process(gateway)


# The web page


def test_log_in_upload_the_seed_watch_it_succeed_and_page_through_the_catalog(page: Page, stack, seed_csv):
    page.goto("/")
    expect(page).to_have_title("Catalog")

    # Sign up (which logs in), log out, and log in again with the same account.
    username = sign_up_in_the_page(page)
    expect(page.get_by_role("heading", name="Import a CSV file")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Import a CSV file")).to_be_hidden()
    login = page.get_by_role("form", name="Log in")
    login.get_by_label("Username or e-mail").fill(username)
    login.get_by_label("Password").fill("web-password-1")
    login.get_by_role("button", name="Log in").click()
    expect(page.locator("#session-user")).to_have_text(username)

    # Upload: the bytes bar fills, then the import bar follows the status endpoint to Success.
    upload_in_the_page(page, seed_csv)
    expect(page.get_by_label("Upload", exact=True)).to_have_attribute("value", "100")
    expect(page.locator("#upload-progress-text")).to_have_text(f"{seed_csv.stat().st_size / 1000:.1f} kB sent")
    expect(page.get_by_label("Import", exact=True)).to_have_attribute("value", "100")
    expect(page.locator('dd[data-count="rows_processed"]')).to_have_text("50")
    expect(page.locator('dd[data-count="rows_failed"]')).to_have_text("0")
    expect(page.locator("#row-errors")).to_be_hidden()
    screenshot(page, "web-upload-success")

    # Page through the whole catalog with Next: every item once, in the API's order.
    every_id = catalog_ids(stack.url)
    assert len(every_id) >= 50
    pages = math.ceil(len(every_id) / 20)
    summary = f"Showing 1{EN_DASH}{min(20, len(every_id))} of {len(every_id)}"
    expect(page.locator("#catalog-summary")).to_have_text(summary)
    expect(page.locator("#page-label")).to_have_text(f"Page 1 of {pages}")
    next_button = page.get_by_role("button", name="Next")
    walked = shown_ids(page)
    for number in range(2, pages + 1):
        next_button.click()
        expect(page.locator("#page-label")).to_have_text(f"Page {number} of {pages}")
        walked += shown_ids(page)
    assert walked == every_id
    expect(next_button).to_be_disabled()

    # Previous goes back one page at a time.
    page.get_by_role("button", name="Previous").click()
    expect(page.locator("#page-label")).to_have_text(f"Page {pages - 1} of {pages}")
    assert shown_ids(page) == every_id[(pages - 2) * 20 : (pages - 1) * 20]
    page.get_by_role("button", name="First").click()
    expect(page.locator("#page-label")).to_have_text(f"Page 1 of {pages}")
    expect(page.get_by_role("button", name="Previous")).to_be_disabled()

    # Filters and sort: what the page shows is what the API answers for the same question.
    search = page.get_by_role("search", name="Filter and sort the catalog")
    search.get_by_label("Type").fill("Movie")
    search.get_by_label("Sort by").select_option("title")
    search.get_by_label("Direction").select_option(label="Descending")
    search.get_by_label("Per page").select_option("10")
    search.get_by_role("button", name="Apply").click()
    movies = catalog_ids(stack.url, type="Movie", sort="-title")
    expect(page.locator("#catalog-summary")).to_have_text(f"Showing 1{EN_DASH}10 of {len(movies)}")
    assert shown_ids(page) == movies[:10]
    screenshot(page, "web-catalog")

    search.get_by_label("Title contains").fill("zzz-no-such-title")
    search.get_by_role("button", name="Apply").click()
    expect(page.locator("#catalog-summary")).to_have_text("No items match.")


def test_row_errors_are_listed_under_the_import(page: Page, stack, tmp_path):
    marker = uuid.uuid4().hex[:8]
    csv_path = tmp_path / "ragged.csv"
    csv_path.write_text(
        "show_id,type,title\n"
        f"web-{marker}-1,Movie,Fine\n"
        f"web-{marker}-2,Movie,Too,many,fields\n"
        f"web-{marker}-3,TV Show,Also fine\n"
    )
    page.goto("/")
    sign_up_in_the_page(page)
    upload_in_the_page(page, csv_path)

    expect(page.locator('dd[data-count="rows_inserted"]')).to_have_text("2")
    expect(page.locator('dd[data-count="rows_failed"]')).to_have_text("1")
    errors = page.get_by_role("table", name="Row errors (1)")
    expect(errors).to_be_visible()
    expect(errors.locator("tbody tr")).to_have_count(1)
    expect(errors.locator("tbody td").first).to_have_text("3")
    screenshot(page, "web-row-errors")


def test_the_advanced_fold_imports_a_gzipped_cp1252_export_with_its_options(page: Page, stack, tmp_path):
    marker = uuid.uuid4().hex[:8]
    export = tmp_path / "export.csv.gz"
    export.write_bytes(
        gzip.compress(
            f"show_id;title;year\r\nweb-{marker}-1;Amélie;2001\r\nweb-{marker}-2;Crème;NA\r\nweb-{marker}-3;Short\r\n".encode(
                "cp1252"
            )
        )
    )
    page.goto("/")
    sign_up_in_the_page(page)
    advanced = page.locator("#upload-advanced")
    expect(advanced.get_by_label("Encoding")).to_be_hidden()  # folded until asked for
    advanced.locator("summary").click()
    advanced.get_by_label("Encoding").fill("cp1252")
    advanced.get_by_label("Missing-value markers").fill("NA")
    advanced.get_by_label("Rows with too few fields").select_option("pad")
    upload_in_the_page(page, export)
    expect(page.locator('dd[data-count="rows_inserted"]')).to_have_text("3")
    expect(page.locator('dd[data-count="rows_failed"]')).to_have_text("0")
    expect(page.locator("#import-read-as")).to_have_text(
        "Read as gzip · cp1252 · quotes: rfc4180 · missing values: NA · short rows: pad"
    )
    screenshot(page, "web-upload-advanced")
    # NA and the padded cell are missing values: both rows match an empty year.
    response = requests.get(f"{stack.url}/get_content", params={"filter[year]": "", "limit": 100}, timeout=10)
    missing_year = {item["show_id"]: item["title"] for item in response.json()}
    assert missing_year[f"web-{marker}-2"] == "Crème" and missing_year[f"web-{marker}-3"] == "Short"
    assert f"web-{marker}-1" not in missing_year


def test_a_refused_login_is_explained_on_the_page(page: Page):
    page.goto("/")
    login = page.get_by_role("form", name="Log in")
    login.get_by_label("Username or e-mail").fill("nobody_here")
    login.get_by_label("Password").fill("wrong-password")
    login.get_by_role("button", name="Log in").click()
    expect(page.locator("#account-message")).to_have_text("Invalid username or password")
    expect(page.get_by_role("heading", name="Import a CSV file")).to_be_hidden()


# Roles


def log_in_in_the_page(page: Page, username: str, password: str) -> None:
    login = page.get_by_role("form", name="Log in")
    login.get_by_label("Username or e-mail").fill(username)
    login.get_by_label("Password").fill(password)
    login.get_by_role("button", name="Log in").click()
    expect(page.locator("#session-user")).to_have_text(username)


def user_row(page: Page, username: str):
    """The users table's row of ``username``, walking its pages (in username order) until it shows."""
    expect(page.locator("#users-page-label")).not_to_be_empty()
    row = page.locator("#users-table tbody tr", has_text=username)
    while not row.count() and page.locator("#users-next").is_enabled():
        label = page.locator("#users-page-label").text_content()
        page.locator("#users-next").click()
        expect(page.locator("#users-page-label")).not_to_have_text(label)
    expect(row).to_be_visible()
    return row


def test_an_editor_sees_its_role_and_the_upload_but_no_users_table(page: Page):
    page.goto("/")
    sign_up_in_the_page(page)
    expect(page.locator("#session-role")).to_have_text("(editor)")
    expect(page.get_by_role("heading", name="Import a CSV file")).to_be_visible()
    expect(page.get_by_role("heading", name="Users")).to_be_hidden()


def test_an_admin_demotes_and_disables_a_user_in_the_users_table_and_a_viewer_gets_no_upload(page: Page, stack):
    admin = create_admin(stack, "web_admin")
    name = f"web_{uuid.uuid4().hex[:10]}"
    user = {"username": name, "email": f"{name}@example.com", "password": "web-password-1"}
    assert requests.post(f"{stack.url}/signup", json=user, timeout=10).status_code == 201

    page.goto("/")
    log_in_in_the_page(page, admin["username"], admin["password"])
    expect(page.locator("#session-role")).to_have_text("(admin)")
    row = user_row(page, name)
    expect(row.get_by_label(f"Role of {name}")).to_have_value("editor")
    row.get_by_label(f"Role of {name}").select_option("viewer")
    expect(page.locator("#users-message")).to_have_text(f"{name}: viewer, active.")
    screenshot(page, "users-table")

    page.get_by_role("button", name="Log out").click()
    log_in_in_the_page(page, name, user["password"])
    expect(page.locator("#session-role")).to_have_text("(viewer)")
    expect(page.get_by_role("heading", name="Import a CSV file")).to_be_hidden()
    expect(page.get_by_role("heading", name="Browsing only")).to_be_visible()
    expect(page.get_by_role("heading", name="Users")).to_be_hidden()

    page.get_by_role("button", name="Log out").click()
    log_in_in_the_page(page, admin["username"], admin["password"])
    row = user_row(page, name)
    row.get_by_role("button", name=f"Disable {name}").click()
    expect(page.locator("#users-message")).to_have_text(f"{name}: viewer, disabled.")
    refused = requests.post(f"{stack.url}/login", json={"username": name, "password": user["password"]}, timeout=10)
    assert refused.status_code == 403


def test_a_paused_import_shows_why_and_can_be_cancelled(page: Page, stack, tmp_path):
    csv_path = tmp_path / f"paused-{uuid.uuid4().hex[:8]}.csv"
    csv_path.write_text(f"show_id,type,title\nweb-{uuid.uuid4().hex[:8]},Movie,Waits\n")
    page.goto("/")
    sign_up_in_the_page(page)
    stack.stop_service("worker")  # the job stays where the test puts it
    try:
        page.get_by_label("CSV file", exact=True).set_input_files(str(csv_path))
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("#import-status")).to_have_text("Pending")
        reason = "the store's volume has 310 MB free; waiting for 513 MB"
        # What a worker writes when the store's volume is under its reserve (tests-e2e/chaos/test_disk_full.py
        # fills a real one).
        with stack.database() as db:
            paused = {"$set": {"status": "Paused", "paused_reason": reason}}
            job = db.import_jobs.find_one_and_update({"filename": csv_path.name, "status": "Pending"}, paused)
        assert job is not None
        expect(page.locator("#import-status")).to_have_text(f"Paused: {reason}")
        screenshot(page, "web-import-paused")
        page.get_by_role("button", name="Cancel import").click()
        expect(page.locator("#import-status")).to_have_text("Cancelled")
    finally:
        stack.start_service("worker")


def test_an_ended_import_is_undone_from_the_page(page: Page, stack, tmp_path):
    keys = [f"undo-{uuid.uuid4().hex[:8]}-{n}" for n in range(3)]
    csv_path = tmp_path / "undo.csv"
    csv_path.write_text("show_id,type,title\n" + "".join(f"{key},Movie,Undone {key}\n" for key in keys))
    page.goto("/")
    sign_up_in_the_page(page)
    undo = page.get_by_role("button", name="Undo this import")
    expect(undo).to_be_hidden()
    upload_in_the_page(page, csv_path)
    assert all(requests.get(f"{stack.url}/contents/{key}", timeout=10).status_code == 200 for key in keys)

    # Asked first; declining changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    undo.click()
    expect(page.locator("#import-status")).to_have_text("Success")
    expect(undo).to_be_enabled()

    page.once("dialog", lambda dialog: dialog.accept())
    undo.click()
    expect(page.locator("#import-status")).to_have_text("Reverted", timeout=IMPORT_TIMEOUT_MS)
    expect(page.locator('dd[data-count="rows_reverted"]')).to_have_text("3")
    expect(page.locator('dd[data-count="rows_kept"]')).to_have_text("0")
    expect(page.locator("#import-error")).to_have_text(
        "The import was undone: 3 items removed, 0 kept because later imports changed them."
    )
    expect(undo).to_be_hidden()
    expect(page.get_by_role("button", name="Cancel import")).to_be_hidden()
    screenshot(page, "web-import-undone")
    assert all(requests.get(f"{stack.url}/contents/{key}", timeout=10).status_code == 404 for key in keys)


# The session


ACCESS_TOKEN_TTL = 5
# The services accept a token this many seconds past its expiry (TokenVerifier's leeway).
TOKEN_LEEWAY = 5


@pytest.fixture(scope="module")
def short_token_stack(tmp_path_factory) -> Iterator[LocalStack]:
    """A stack whose access tokens last 5 seconds."""
    env = {**TEST_GATEWAY_LIMITS, "AUTH_ACCESS_TOKEN_TTL": str(ACCESS_TOKEN_TTL)}
    with LocalStack(ROOT, tmp_path_factory.mktemp("short-tokens"), env=env) as local:
        yield local


def test_the_page_keeps_its_session_through_an_import_longer_than_a_token_and_revokes_it_on_log_out(
    browser: Browser, short_token_stack, tmp_path
):
    stack = short_token_stack
    # Long enough that a token the page never renewed would be refused twice over.
    waiting = 2 * (ACCESS_TOKEN_TTL + TOKEN_LEEWAY) + 2
    with open_page(browser, stack.url) as page:
        answers: list[tuple[str, str, int]] = []
        page.on("response", lambda r: answers.append((r.request.method, urlsplit(r.url).path, r.status)))
        page.goto("/")
        sign_up_in_the_page(page)

        # No worker for a while: the import waits in the queue, as behind a busy worker, while the page follows it.
        stack.stop_service("worker")
        try:
            csv_path = write_movies_csv(tmp_path / "movies.csv", range(2_000), prefix=f"web-{uuid.uuid4().hex[:6]}-")
            page.get_by_label("CSV file", exact=True).set_input_files(str(csv_path))
            page.get_by_role("button", name="Upload").click()
            expect(page.locator("#import-status")).to_have_text("Pending")
            time.sleep(waiting)
            expect(page.locator("#import-status")).to_have_text("Pending")
        finally:
            stack.start_service("worker")
        expect(page.locator("#import-status")).to_have_text("Success", timeout=IMPORT_TIMEOUT_MS)
        expect(page.locator('dd[data-count="rows_processed"]')).to_have_text("2,000")

        # The page followed the import without one refused call: it renewed its token in time, again and again.
        renewals = [answer for answer in answers if answer[:2] == ("POST", "/token/refresh")]
        assert len(renewals) >= waiting // ACCESS_TOKEN_TTL - 1, renewals
        assert all(status == 200 for *_, status in renewals), renewals
        assert not [answer for answer in answers if answer[2] == 401], answers
        expect(page.locator("#session-user")).to_be_visible()

        # Log out revokes the refresh token on the server: the one the page held no longer works.
        with page.expect_response(lambda r: urlsplit(r.url).path == "/logout") as logout:
            page.get_by_role("button", name="Log out").click()
        assert logout.value.status == 200
        refresh_token = logout.value.request.post_data_json["refresh_token"]
        expect(page.locator("#account-message")).to_have_text("You are logged out.")
        assert page.evaluate("sessionStorage.getItem('catalog.session')") is None
    refused = requests.post(f"{stack.url}/token/refresh", json={"refresh_token": refresh_token}, timeout=10)
    assert refused.status_code == 401


# Datasets


def header_texts(page: Page) -> list[str]:
    return page.locator("#catalog-table thead th").all_inner_texts()


def test_a_file_uploaded_to_a_new_dataset_is_picked_with_its_count_and_shows_only_its_columns(
    page: Page, stack, seed_csv, tmp_path
):
    seed_columns = seed_csv.read_text().splitlines()[0].split(",")
    name = f"web-{uuid.uuid4().hex[:8]}"
    box_office = tmp_path / "box-office.csv"
    box_office.write_text(
        "id,title,Box Office ($M),Año\n1,Alpha,12.5,1999\n2,Beta,3,2004\n3,Gamma,,2010\n", encoding="utf-8"
    )
    page.goto("/")
    sign_up_in_the_page(page)
    upload = page.get_by_role("form", name="Import a CSV file")
    search = page.get_by_role("search", name="Filter and sort the catalog")
    picker = search.get_by_label("Dataset")
    expect(picker).to_have_value("default")

    # A name the API would refuse is refused by the form itself, before anything is sent.
    upload.get_by_label("Dataset").fill("Box Office")
    upload.get_by_label("CSV file", exact=True).set_input_files(str(box_office))
    upload.get_by_role("button", name="Upload").click()
    assert upload.get_by_label("Dataset").evaluate("input => input.validity.patternMismatch")
    expect(page.locator("#upload-progress-panel")).to_be_hidden()

    # The seed into `default` (the field left empty), then the small file into a dataset of its own.
    upload.get_by_label("Dataset").fill("")
    upload_in_the_page(page, seed_csv)
    upload.get_by_label("Dataset").fill(name)
    upload_in_the_page(page, box_office)

    # The page switches to the dataset it imported into: its count in the picker, only its columns in the table.
    expect(picker).to_have_value(name)
    expect(picker.locator("option:checked")).to_have_text(f"{name} (3)")
    expect(search.locator("#catalog-dataset-about")).to_have_text(re.compile(r"^Key: id · owner: web_"))
    own_columns = ["id", "title", "Box Office ($M)", "Año"]
    expect(page.locator("#catalog-table thead th")).to_have_text(own_columns)
    expect(page.locator("#catalog-summary")).to_have_text(f"Showing 1{EN_DASH}3 of 3")
    assert shown_ids(page) == ["1", "2", "3"]
    first_row = page.locator("#catalog-table tbody tr").first.locator("td")
    assert first_row.all_inner_texts() == ["1", "Alpha", "12.5", "1999"]
    assert search.get_by_label("Column").locator("option").all_inner_texts()[1:] == own_columns
    assert search.get_by_label("Sort by").locator("option").all_inner_texts()[1:] == own_columns
    expect(search.get_by_label("Type")).to_be_disabled()  # the file has no `type` column

    # Filtered by the column whose name has `$`, spaces and parentheses.
    search.get_by_label("Column").select_option("Box Office ($M)")
    search.get_by_label("equals").fill("3")
    search.get_by_role("button", name="Apply").click()
    expect(page.locator("#catalog-summary")).to_have_text(f"Showing 1{EN_DASH}1 of 1")
    assert shown_ids(page) == ["2"]
    screenshot(page, "web-dataset")

    # `default` shows the seed's columns and none of the other file's; back to the dataset by its label.
    picker.select_option("default")
    expect(search.get_by_label("Column")).to_have_value("")  # `default` has no such column
    expect(page.locator("#catalog-table thead th").first).to_have_text(seed_columns[0])
    headers = header_texts(page)
    assert [column for column in headers if column in seed_columns] == seed_columns
    assert "Box Office ($M)" not in headers and "Año" not in headers
    expect(search.get_by_label("Type")).to_be_enabled()
    default_count = len(catalog_ids(stack.url))
    expect(picker.locator("option:checked")).to_have_text(f"default ({default_count:,})")

    picker.select_option(label=f"{name} (3)")
    expect(page.locator("#catalog-table thead th")).to_have_text(own_columns)
    expect(page.locator("#catalog-summary")).to_have_text(f"Showing 1{EN_DASH}3 of 3")
