"""Real-browser tests: Playwright for Python driving the system's Chromium.

No browser is downloaded: the tests use Debian's ``chromium`` (or the one named by
``CHROMIUM_PATH``) and are skipped, with the reason, only where none is installed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; the test itself only
# prepares data through the ORM before and after browser steps.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(
    os.environ.get("E2E_ARTIFACTS", Path(__file__).resolve().parents[2] / "var" / "e2e")
)


def chromium_path() -> str | None:
    candidates = [os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium installed (apt-get install chromium, or set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Any:
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        # Playwright leaves empty style="" attributes behind; htmx would copy them into
        # swapped content, which the CSP then reports. Remove them.
        page.evaluate(
            "() => document.querySelectorAll('[style=\"\"]')"
            ".forEach(e => e.removeAttribute('style'))"
        )
        return path

    return take


@pytest.fixture
def webauthn_on_live_server(settings: Any, live_server: Any) -> None:
    """WebAuthn's relying party must be the page's host: the live server's."""
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]


@pytest.fixture
def browsers(browser: Any, live_server: Any) -> Iterator[Any]:
    """Several browser contexts (people) on the live server (journey_helpers.Browsers)."""
    from tests.e2e.journey_helpers import Browsers

    opened = Browsers(browser, live_server.url)
    yield opened
    opened.close()


@pytest.fixture
def shots(screenshot: Any) -> Any:
    """Screenshots at desktop and mobile widths (journey_helpers.Shots)."""
    from tests.e2e.journey_helpers import Shots

    return Shots(screenshot)
