"""The browser suites' shared pieces (test_web.py, test_dashboard.py): Debian's Chromium started by
Playwright, a page that fails its test on any script error or off-site request, and screenshots."""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, sync_playwright

from catalog_testkit.constants import REPO_ROOT

ARTIFACTS = REPO_ROOT / "test-artifacts"
# As root in a container, without a GPU, and with no traffic to anything but the stack under test.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EN_DASH = "\u2013"  # the page writes ranges with an en dash, as typeset text does


@contextmanager
def open_page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A fresh browser context on the gateway; any script error, CSP refusal or off-site request fails the test."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    # The browser logs every 4xx answer as a console error; a test that expects one checks it on the page.
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and not message.text.startswith("Failed to load")
            and problems.append(f"console: {message.text}")
        ),
    )
    gateway = urlsplit(base_url).netloc
    page.on(
        "request",
        lambda request: (
            urlsplit(request.url).netloc in (gateway, "") or problems.append(f"off-site request: {request.url}")
        ),
    )
    yield page
    context.close()
    assert not problems, problems


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(executable).exists(), "Debian's chromium package is needed: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
