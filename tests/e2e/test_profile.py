from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Any, live_server: Any, login: str = "alice") -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(f"{live_server.url}/settings/")


def test_edit_the_display_name_in_place(
    page: Any, live_server: Any, user: User, screenshot: Any
) -> None:
    sign_in(page, live_server)
    page.get_by_role("link", name="Profile").click()
    page.wait_for_url(f"{live_server.url}/settings/profile/")
    marker = page.evaluate("() => (window.__marker = Math.random())")
    page.locator("#card-name").get_by_role("link", name="Edit").click()
    field = page.get_by_role("textbox", name="Display name")
    field.fill("Alice in Chains")
    page.locator("#card-name").get_by_role("button", name="Save").click()
    page.locator("#card-name").get_by_text("Alice in Chains").wait_for()
    assert page.get_by_text("Your display name was saved.").is_visible()
    # Swapped in place: the page was not reloaded.
    assert page.evaluate("() => window.__marker") == marker
    screenshot(page, "profile-saved")
    user.refresh_from_db()
    assert user.display_name == "Alice in Chains"
    assert page.console_errors == []


def test_avatar_upload_in_the_browser(
    page: Any, live_server: Any, user: User, tmp_path: Any
) -> None:
    from PIL import Image

    picture = tmp_path / "me.png"
    Image.new("RGB", (500, 300), (10, 90, 200)).save(picture)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/settings/profile/")
    page.get_by_label("New picture").set_input_files(str(picture))
    page.get_by_role("button", name="Upload picture").click()
    page.get_by_text("Your picture was saved.").wait_for()
    image = page.locator("#card-avatar img.avatar")
    image.wait_for()
    handle = image.element_handle()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=handle)
    assert page.evaluate("(img) => img.naturalWidth", handle) == 256
    user.refresh_from_db()
    assert user.avatar.name.endswith(".webp")
    assert page.console_errors == []
