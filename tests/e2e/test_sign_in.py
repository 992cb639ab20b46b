from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_and_see_the_settings_home(
    page: Any, live_server: Any, user: User, screenshot: Any
) -> None:
    page.goto(f"{live_server.url}/")
    assert page.url.endswith("/accounts/login/")
    page.get_by_label("Login").fill("alice@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(f"{live_server.url}/settings/")
    assert page.get_by_role("heading", level=1).inner_text() == "Account settings"
    assert page.get_by_text("alice@example.org").is_visible()
    assert page.locator('nav a[aria-current="page"]').inner_text() == "Overview"
    screenshot(page, "settings-home")
    # No CSP violation or script error on the way.
    assert page.console_errors == []
