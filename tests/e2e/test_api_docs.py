"""The API's documentation page in a real browser: Swagger UI renders the
operations from the portal's own files, under the site's Content-Security-Policy,
without a request to another site."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs before the page's own scripts; added by the browser, so the CSP does not
# apply to it. Every violation the page causes is kept on ``window``.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  const blocked = event.blockedURI || "inline";
  window.__cspViolations.push(`${event.effectiveDirective} ${blocked} ${where}`);
});
"""


def test_the_docs_page_renders_under_the_csp_from_local_files(
    page: Any, live_server: Any, screenshot: Any
) -> None:
    site = urlsplit(live_server.url).netloc
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.add_init_script(RECORD_CSP_VIOLATIONS)

    response = page.goto(f"{live_server.url}/api/docs")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # The operations of /api/my-account are rendered, and one opens.
    operation = page.locator('.opblock-summary-path[data-path="/api/my-account"]').first
    operation.wait_for()
    assert page.locator(".opblock-get .opblock-summary-path[data-path='/api/my-account']").count()
    assert page.locator(".opblock-patch .opblock-summary-path[data-path='/api/my-account']").count()
    operation.click()
    opened = page.locator(".opblock.is-open").first
    opened.locator(".responses-wrapper").wait_for()
    # "Try it out" calls the API from the page (no token: the JSON 401).
    opened.get_by_role("button", name="Try it out").click()
    opened.get_by_role("button", name="Execute").click()
    opened.locator(".live-responses-table .response-col_status", has_text="401").wait_for()
    assert "unauthenticated" in opened.locator(".live-responses-table").inner_text()
    # The dialog to give a token, and the schemas at the bottom.
    page.locator(".auth-wrapper .authorize").click()
    page.locator(".dialog-ux .modal-ux").wait_for()
    assert page.get_by_text("TokenAuth").first.is_visible()
    screenshot(page, "api-docs-authorize")
    page.locator(".dialog-ux .close-modal").click()
    page.locator(".models").get_by_text("Error", exact=True).click()
    page.locator(".models .json-schema-2020-12__title", has_text="details").first.wait_for()
    page.wait_for_load_state("networkidle")
    screenshot(page, "api-docs")

    assert page.evaluate("() => window.__cspViolations") == []
    assert [line for line in console if "Content Security Policy" in line] == []
    # The only error logged is the browser's note of the 401 asked for above.
    assert all("status of 401" in error for error in page.console_errors), page.console_errors
    outside = [
        url
        for url in requests
        if urlsplit(url).scheme not in {"data", "blob"} and urlsplit(url).netloc != site
    ]
    assert outside == []
    assert any(url.endswith("/api/openapi.json") for url in requests)


def test_try_it_out_changes_the_account_of_the_signed_in_user(
    page: Any, live_server: Any, user: User
) -> None:
    # The session's CSRF token is sent by the page's "Try it out".
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("input[name=login]").fill("alice")
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(f"{live_server.url}/settings/")
    # The operation is opened by a click, as a reader would: a link to it makes
    # Swagger UI scroll there smoothly, and a busy machine can keep the button
    # moving for longer than a click waits.
    page.goto(f"{live_server.url}/api/docs")
    page.locator(".opblock-patch .opblock-summary-path[data-path='/api/my-account']").click()
    opened = page.locator(".opblock-patch.is-open").first
    opened.locator(".responses-wrapper").wait_for()
    opened.get_by_role("button", name="Try it out").click()
    opened.locator("textarea.body-param__text").fill('{"display_name": "Alice from the docs"}')
    opened.get_by_role("button", name="Execute").click()
    opened.locator(".live-responses-table .response-col_status", has_text="200").wait_for()
    user.refresh_from_db()
    assert user.display_name == "Alice from the docs"
    assert page.evaluate("() => window.__cspViolations") == []
    assert page.console_errors == []
