"""The one place browser tests get Chromium from: Playwright driving Debian's Chromium
(never a downloaded one).

- :data:`requires_browser` is the ``pytestmark`` of every browser test module: skipped,
  with the reason, only when the Python ``playwright`` package or the Chromium binary
  (``/usr/bin/chromium``, or ``WFMON_CHROMIUM``) is missing.
- The ``browser`` fixture (tests/conftest.py) is one Chromium per test module, from
  :func:`launch_chromium`; :func:`open_context` gives each test its own context, signed in
  by the cookie the sign-in page sets when a token is given.
- :func:`shot` saves a screenshot to ``WFMON_SCREENSHOT_DIR`` (default
  ``.wfmon/artifacts/screenshots``); with ``WFMON_UPDATE_DOC_IMAGES=1`` the ones the docs
  show (``doc=True``) are also copied to ``docs/images``.

One browser per module, not per session: Playwright's sync API runs an event loop on the
test thread while it is open, and other modules' tests call ``asyncio.run`` there.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from wfmon.api.deps import TOKEN_COOKIE

CHROMIUM = Path(os.environ.get("WFMON_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("WFMON_SCREENSHOT_DIR", REPO / ".wfmon/artifacts/screenshots"))
DOC_IMAGES = REPO / "docs/images"
#: Chromium as root in a container: no sandbox, and /dev/shm is small.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-dev-shm-usage")

HAVE_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
HAVE_BROWSER = HAVE_PLAYWRIGHT and CHROMIUM.exists()

#: The mark of every browser test (a module's ``pytestmark``, or one test's decorator).
requires_browser = pytest.mark.skipif(
    not HAVE_BROWSER,
    reason=(
        f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
        if HAVE_PLAYWRIGHT
        else "browser tests need the Python package playwright (pip install playwright)"
    ),
)


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, closed (with every context) when the block ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def open_context(
    browser: Any,
    base_url: str | None = None,
    *,
    token: str | None = None,
    width: int = 1366,
    height: int = 850,
    timeout_ms: int = 15_000,
) -> Any:
    """A new browser context on ``base_url``; with ``token``, signed in as its user (the
    cookie the sign-in page sets). The caller closes it (``browser`` closes it at the end
    of the module otherwise)."""
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=base_url)
    context.set_default_timeout(timeout_ms)
    if token is not None:
        if base_url is None:
            raise ValueError("signing a context in needs its base_url")
        host = urlsplit(base_url).hostname or "127.0.0.1"
        context.add_cookies([{"name": TOKEN_COOKIE, "value": token, "domain": host, "path": "/"}])
    return context


def sign_in(page: Any, token: str) -> None:
    """Sign in through the sign-in page's form, as a user does, and land on the projects."""
    page.goto("/signin")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/projects")


def shot(target: Any, name: str, *, doc: bool = False, full_page: bool = False) -> Path:
    """A screenshot of a page (or of one element) named ``name``.png; see the module doc."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    if full_page:
        target.screenshot(path=str(path), full_page=True)
    else:
        target.screenshot(path=str(path))
    if doc:
        copy_to_docs(path)
    return path


def copy_to_docs(path: Path) -> None:
    """Copy a screenshot into docs/images when ``WFMON_UPDATE_DOC_IMAGES=1``."""
    if os.environ.get("WFMON_UPDATE_DOC_IMAGES") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOC_IMAGES / path.name)
