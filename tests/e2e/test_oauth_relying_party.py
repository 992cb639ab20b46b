"""A real relying party signs a user in through the portal and uses the Account API.

The relying party is ``tests/rp/rp.mjs``, built on the npm package ``openid-client``
(a certified OpenID Connect client; installed by ``npm ci --prefix tests/rp``) and run
by node on 127.0.0.1. It discovers the portal, sends the browser to its authorize
step with PKCE (S256), checks the state, the nonce and the ID token against the
JWKS, reads ``GET /api/my-account`` with the access token and refreshes. In Chromium
the user signs in with the password and the authenticator app, allows the app, and
lands back on the relying party; then the user revokes the app on the Connected
apps page and the relying party is refused: its access token at the Account API,
its refresh token at the token endpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from allauth.idp.oidc.models import Token
from django.core import mail
from django.urls import reverse

from accounts.models import AppGrant, AuditEvent, User
from tests.conftest import PASSWORD
from tests.e2e.journey_helpers import totp_code
from tests.e2e.node_servers import free_port, start, stop
from tests.oauth.conftest import RegisteredApp, register_app

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RP_DIR = Path(__file__).resolve().parents[1] / "rp"
SCOPE = "openid profile email account:read"
READY_TIMEOUT = 20.0


@dataclass(frozen=True)
class RelyingParty:
    url: str
    app: RegisteredApp
    process: subprocess.Popen[str]
    output: list[str]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=20) as response:
            return json.loads(response.read())

    def post(self, path: str) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read())


def _start(issuer: str, app: RegisteredApp, port: int) -> RelyingParty:
    env = {
        **os.environ,
        "RP_PORT": str(port),
        "RP_ISSUER": issuer,
        "RP_CLIENT_ID": app.id,
        "RP_CLIENT_SECRET": app.secret,
        "RP_SCOPE": SCOPE,
        "NODE_ENV": "test",
    }
    server = start(
        folder=RP_DIR,
        script="rp.mjs",
        package="openid-client",
        what="the relying party",
        env=env,
        timeout=READY_TIMEOUT,
    )
    return RelyingParty(url=server.url, app=app, process=server.process, output=server.output)


@pytest.fixture
def relying_party(live_server: Any) -> Iterator[RelyingParty]:
    """The app registered with the relying party's callback (exact match), and the
    relying party running against the live portal."""
    port = free_port()
    app = register_app(
        name="Notes",
        scopes=["openid", "profile", "email", "account:read"],
        redirect_uris=[f"http://127.0.0.1:{port}/callback"],
    )
    rp = _start(live_server.url, app, port)
    try:
        yield rp
    finally:
        stop(rp.process)


def _local_only(page: Any) -> None:
    """Nothing the browser loads leaves this machine."""

    def route(route: Any) -> None:
        if urlsplit(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            route.continue_()
        else:
            route.abort()

    page.route("**/*", route)


def test_a_relying_party_signs_in_reads_the_account_refreshes_and_is_refused_after_revoking(
    page: Any,
    live_server: Any,
    user: User,
    relying_party: RelyingParty,
    screenshot: Any,
) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    _local_only(page)
    rp = relying_party
    portal = live_server.url

    # The relying party sends the browser to the portal, which asks for a sign-in.
    page.goto(f"{rp.url}/login")
    page.wait_for_url(f"{portal}/accounts/login/**")
    screenshot(page, "1-portal-sign-in")
    page.get_by_label("Login").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign In").click()

    # The second step: the authenticator app.
    page.wait_for_url(f"{portal}/accounts/2fa/**")
    screenshot(page, "2-second-step")
    form = page.locator("main form:has(input[name=method][value=totp])")
    form.locator("input[name=code]").fill(totp_code(device))
    with page.expect_navigation():
        form.locator("button[type=submit]").first.click()

    # The consent page names the app and the account; allowing it goes back to the
    # relying party.
    page.wait_for_url(f"{portal}/identity/o/authorize**")
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading == "Allow Notes to use your account?"
    assert page.locator("main dd").first.inner_text() == "alice"
    screenshot(page, "3-consent")
    assert not AppGrant.objects.filter(user=user).exists()
    with page.expect_navigation():
        page.get_by_role("button", name="Allow", exact=True).click()
    page.wait_for_url(f"{rp.url}/callback**")
    screenshot(page, "4-back-at-the-relying-party")
    assert page.locator("#username").inner_text() == "alice", "".join(rp.output)
    assert page.console_errors == []

    # What the relying party checked and read.
    result = rp.get("/result")
    assert result["signed_in"] is True, result
    claims = result["claims"]
    assert claims["iss"] == portal
    assert claims["aud"] == rp.app.id
    assert claims["email"] == "alice@example.org"
    assert claims["preferred_username"] == "alice"
    assert result["userinfo"]["sub"] == claims["sub"]
    assert result["account"]["status"] == 200
    assert result["account"]["body"]["username"] == "alice"
    assert result["expires_in"] == pytest.approx(600, abs=30)
    assert sorted(result["scope"].split()) == sorted(SCOPE.split())
    assert result["has_refresh_token"] is True
    grant = AppGrant.objects.get(user=user, client=rp.app.app)
    assert sorted(grant.scopes) == sorted(SCOPE.split())
    assert AuditEvent.objects.filter(action="app.connected", subject=user).count() == 1
    assert mail.outbox[-1].subject == "[Account portal] An app was connected to your account"
    assert mail.outbox[-1].to == ["alice@example.org"]

    # A refresh gives a new access token (and a new refresh token), which works.
    refreshed = rp.post("/refresh")
    assert refreshed["ok"] is True, refreshed
    assert refreshed["new_access_token"] is True
    assert refreshed["new_refresh_token"] is True
    again = rp.post("/account")
    assert again["status"] == 200, again
    assert again["body"]["username"] == "alice"

    # The user revokes the app in the Connected apps section: its tokens die at once.
    connected = f"{portal}{reverse('connected_apps')}"
    page.goto(connected)
    row = page.get_by_role("row").filter(has_text="Notes")
    assert row.count() == 1
    screenshot(page, "5-connected-apps")
    # Revoking asks the user to confirm who they are; the revocation then goes on.
    with page.expect_navigation():
        row.get_by_role("button", name="Revoke Notes").click()
    page.wait_for_url(f"{portal}{reverse('account_reauthenticate')}**")
    assert AppGrant.objects.filter(user=user).exists()
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(connected)
    page.get_by_text("You have not allowed any app to use your account.").wait_for()
    screenshot(page, "6-revoked")
    assert not Token.objects.filter(user=user, client=rp.app.app).exists()
    assert not AppGrant.objects.filter(user=user).exists()
    revoked = AuditEvent.objects.get(action="app.revoked", subject=user)
    assert revoked.data["client_id"] == rp.app.id
    assert mail.outbox[-1].subject == (
        "[Account portal] An app's access to your account was revoked"
    )
    assert mail.outbox[-1].to == ["alice@example.org"]
    assert page.console_errors == []

    refused = rp.post("/account")
    assert refused["status"] == 401, refused
    no_refresh = rp.post("/refresh")
    assert no_refresh["ok"] is False
    assert no_refresh["error"] == "invalid_grant", no_refresh
