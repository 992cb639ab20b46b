"""Two-step verification in a real browser: the authenticator app and a security key
(Chromium's virtual authenticator, driven over the DevTools protocol), each from
setting it up to signing in with it."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("webauthn_on_live_server"),
]


def submit_password(page: Any, live_server: Any, login: str = "alice") -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()


def sign_out(page: Any, live_server: Any) -> None:
    page.locator("header").get_by_role("button", name="Sign out").click()
    page.wait_for_url(lambda url: "/settings/" not in url)
    page.goto(f"{live_server.url}/settings/")
    page.wait_for_url(f"{live_server.url}/accounts/login/**")


def open_two_factor(page: Any, live_server: Any) -> None:
    page.get_by_role("link", name="Two-step verification").click()
    page.wait_for_url(f"{live_server.url}/settings/two-factor/")


def reauthenticate_with_password(page: Any, live_server: Any) -> None:
    page.wait_for_url(f"{live_server.url}/accounts/reauthenticate/**")
    page.locator("input[name='password']").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()


def code_for_step(key: bytes, counter: int) -> str:
    """The 6-digit code of time step ``counter`` (RFC 6238 with django-otp's defaults)."""
    from django_otp.oath import hotp

    return f"{hotp(key, counter, digits=6):06d}"


def test_authenticator_app_from_setup_to_sign_in(
    page: Any, live_server: Any, user: User, screenshot: Any
) -> None:
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    submit_password(page, live_server)
    page.wait_for_url(f"{live_server.url}/settings/")
    open_two_factor(page, live_server)
    page.get_by_role("button", name="Set up an app").click()
    reauthenticate_with_password(page, live_server)
    page.wait_for_url(f"{live_server.url}/settings/two-factor/totp/confirm/")
    screenshot(page, "totp-setup")

    # The key as a person would type it into their app.
    shown = page.locator("#totp-key").inner_text()
    secret = "".join(shown.split())
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert key == device.bin_key
    now = TOTP(key, step=device.step, t0=device.t0, digits=device.digits)
    now.time = time.time()
    page.get_by_role("textbox", name="Code").fill(f"{now.token():0{device.digits}d}")
    page.get_by_role("button", name="Turn on").click()

    page.wait_for_url(f"{live_server.url}/settings/two-factor/backup-codes/new/")
    codes = page.locator("#backup-codes li")
    assert codes.count() == 10
    screenshot(page, "backup-codes")
    page.get_by_role("button", name="I have saved them").click()
    page.wait_for_url(f"{live_server.url}/settings/two-factor/")
    assert page.locator("#totp-title + p .badge").inner_text() == "On"
    device.refresh_from_db()
    assert device.confirmed

    sign_out(page, live_server)
    submit_password(page, live_server)
    page.wait_for_url(f"{live_server.url}/accounts/2fa/")
    assert page.get_by_role("heading", level=1).inner_text() == "Two-step verification"
    screenshot(page, "second-step")

    # The code used to confirm cannot be replayed: take the next time step's
    # (the device accepts one step either side of the current one).
    device.refresh_from_db()
    app = page.locator(
        "section", has=page.get_by_role("heading", name="Code from your authenticator app")
    )
    app.get_by_role("textbox", name="Code").fill(code_for_step(key, device.last_t + 1))
    app.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{live_server.url}/settings/")
    assert page.get_by_role("heading", level=1).inner_text() == "Account settings"
    screenshot(page, "signed-in")
    assert page.console_errors == []


def add_virtual_authenticator(page: Any) -> tuple[Any, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    result = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, result["authenticatorId"]


def test_security_key_from_setup_to_sign_in(
    page: Any, live_server: Any, user: User, screenshot: Any
) -> None:
    from django_otp_webauthn.models import WebAuthnCredential

    cdp, authenticator = add_virtual_authenticator(page)

    submit_password(page, live_server)
    page.wait_for_url(f"{live_server.url}/settings/")
    open_two_factor(page, live_server)
    page.get_by_role("link", name="Add a security key or passkey").click()
    reauthenticate_with_password(page, live_server)
    page.wait_for_url(f"{live_server.url}/settings/two-factor/passkeys/add/")
    screenshot(page, "passkey-add")
    page.locator("#passkey-register-button").click()

    page.wait_for_url(f"{live_server.url}/settings/two-factor/passkeys/*/?new=1")
    assert page.get_by_role("heading", level=1).inner_text() == "Your security key was added"
    assert (
        len(cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"])
        == 1
    )
    page.get_by_label("Name").fill("Blue key")
    screenshot(page, "passkey-name")
    page.get_by_role("button", name="Save").click()

    # The first factor brings the first backup codes.
    page.wait_for_url(f"{live_server.url}/settings/two-factor/backup-codes/new/")
    assert page.locator("#backup-codes li").count() == 10
    page.get_by_role("button", name="I have saved them").click()
    page.wait_for_url(f"{live_server.url}/settings/two-factor/")
    row = page.locator("#passkeys-title ~ .table-wrap tbody tr")
    assert row.count() == 1
    assert row.locator("td").first.inner_text() == "Blue key"
    screenshot(page, "passkey-listed")
    credential = WebAuthnCredential.objects.get(user=user)
    assert credential.name == "Blue key"
    assert credential.last_used_at is None

    sign_out(page, live_server)
    submit_password(page, live_server)
    page.wait_for_url(f"{live_server.url}/accounts/2fa/")
    screenshot(page, "second-step")
    page.get_by_role("button", name="Use a security key or passkey").click()
    page.wait_for_url(f"{live_server.url}/settings/")
    assert page.get_by_role("heading", level=1).inner_text() == "Account settings"
    screenshot(page, "signed-in")

    credential.refresh_from_db()
    assert credential.last_used_at is not None
    open_two_factor(page, live_server)
    assert row.locator("td").nth(2).inner_text() != "Never"
    assert page.console_errors == []
