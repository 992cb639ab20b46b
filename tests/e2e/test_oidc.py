"""One real OpenID Connect round trip, against a provider the test starts itself.

The provider is the npm package ``oidc-provider`` run by node (``tests/oidc/server.js``,
installed by ``npm ci --prefix tests/oidc``), listening on 127.0.0.1 only. The test
links it to an account from the linked accounts page, signs in with it, then unlinks
it, checking the database after each step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount
from django.urls import reverse

from accounts.models import AuditEvent, User
from tests.conftest import PASSWORD
from tests.e2e.node_servers import NodeServer, free_port, start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
PROVIDER_ID = "localidp"
PROVIDER_NAME = "Local IdP"
CLIENT_ID = "portal-test"
CLIENT_SECRET = "portal-test-secret"
OIDC_SUB = "oidc-user-1"
READY_TIMEOUT = 15.0


LocalProvider = NodeServer


def _start_provider(redirect_uri: str) -> LocalProvider:
    env = {
        **os.environ,
        "OIDC_PORT": str(free_port()),
        "OIDC_REDIRECT_URIS": redirect_uri,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "NODE_ENV": "test",
    }
    return start(
        folder=OIDC_DIR,
        script="server.js",
        package="oidc-provider",
        what="the local OpenID Connect provider",
        env=env,
        timeout=READY_TIMEOUT,
    )


@pytest.fixture
def oidc_provider(live_server: Any, settings: Any) -> Iterator[LocalProvider]:
    """The local provider, and allauth configured to use it (this test only)."""
    callback = reverse("openid_connect_callback", kwargs={"provider_id": PROVIDER_ID})
    provider = _start_provider(f"{live_server.url}{callback}")
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": PROVIDER_ID,
                    "name": PROVIDER_NAME,
                    "client_id": CLIENT_ID,
                    "secret": CLIENT_SECRET,
                    "settings": {"server_url": provider.url},
                }
            ]
        }
    }
    try:
        yield provider
    finally:
        provider.stop()


def _local_only(page: Any, portal_url: str) -> list[str]:
    """Refuses every request that would leave this machine (the provider's pages
    import a web font) and returns the console errors of the portal's own pages."""
    portal_errors: list[str] = []

    def route(route: Any) -> None:
        if urlsplit(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            route.continue_()
        else:
            route.abort()

    def console(msg: Any) -> None:
        url = (msg.location or {}).get("url", "")
        if msg.type == "error" and url.startswith(portal_url):
            portal_errors.append(f"{url}: {msg.text}")

    page.route("**/*", route)
    page.on("console", console)
    return portal_errors


def _reauthenticate_if_asked(page: Any, live_server: Any, screenshot: Any, name: str) -> bool:
    """On the password re-authentication page, confirm with the password."""
    if not page.url.startswith(f"{live_server.url}{reverse('account_reauthenticate')}"):
        return False
    screenshot(page, name)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm").click()
    return True


def _provider_sign_in_and_consent(page: Any, provider: LocalProvider, screenshot: Any) -> None:
    """oidc-provider's development pages: sign in (any password), then consent."""
    page.wait_for_url(f"{provider.url}/interaction/**")
    if page.locator("input[name=login]").count():
        screenshot(page, "provider-sign-in")
        page.locator("input[name=login]").fill(OIDC_SUB)
        page.locator("input[name=password]").fill("any password")
        with page.expect_navigation():
            page.get_by_role("button", name="Sign-in").click()
        page.wait_for_url(f"{provider.url}/interaction/**")
    screenshot(page, "provider-consent")
    page.get_by_role("button", name="Continue").click()


def test_link_sign_in_with_and_unlink_a_real_openid_connect_provider(
    page: Any,
    live_server: Any,
    user: User,
    oidc_provider: LocalProvider,
    screenshot: Any,
) -> None:
    portal_errors = _local_only(page, live_server.url)
    connections = f"{live_server.url}{reverse('socialaccount_connections')}"
    settings_home = f"{live_server.url}{reverse('settings_home')}"
    provider_login = reverse("openid_connect_login", kwargs={"provider_id": PROVIDER_ID})

    # Sign in with the password.
    page.goto(f"{live_server.url}{reverse('account_login')}")
    page.get_by_label("Login").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(settings_home)

    # Link: the linked accounts page → allauth's confirmation → re-authentication
    # (which replays the confirmation) → the provider's pages → back.
    page.goto(connections)
    assert page.get_by_text("No account is linked yet.").is_visible()
    page.get_by_role("link", name=PROVIDER_NAME, exact=True).click()
    page.get_by_role("heading", name=f"Connect {PROVIDER_NAME}").wait_for()
    screenshot(page, "1-connect-confirm")
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    reauthenticated = _reauthenticate_if_asked(
        page, live_server, screenshot, "1b-reauthenticate-to-link"
    )
    if reauthenticated and page.url.startswith(f"{live_server.url}{provider_login}"):
        # The confirmation was not replayed: press it again.
        with page.expect_navigation():
            page.get_by_role("button", name="Continue").click()
    _provider_sign_in_and_consent(page, oidc_provider, screenshot)
    page.wait_for_url(connections)
    screenshot(page, "2-linked")
    account = SocialAccount.objects.get(user=user)
    assert (account.provider, account.uid) == (PROVIDER_ID, OIDC_SUB)
    assert account.extra_data["userinfo"]["email"] == "oidc.user@example.org"
    assert page.get_by_role("row").filter(has_text=PROVIDER_NAME).count() == 1
    assert AuditEvent.objects.filter(action="social.linked", subject=user).count() == 1

    # Sign out, then sign in with the provider from the sign-in page. The provider
    # remembers its own session and the consent, so it may answer at once.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.url}{reverse('account_login')}**")
    page.get_by_role("link", name=PROVIDER_NAME, exact=True).click()
    page.get_by_role("heading", name=f"Sign In Via {PROVIDER_NAME}").wait_for()
    screenshot(page, "3-sign-in-confirm")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(
        lambda url: url.startswith((settings_home, f"{oidc_provider.url}/interaction/"))
    )
    if page.url.startswith(oidc_provider.url):
        _provider_sign_in_and_consent(page, oidc_provider, screenshot)
        page.wait_for_url(settings_home)
    assert page.get_by_text(f"@{user.username}").is_visible()
    screenshot(page, "4-signed-in-with-provider")
    assert User.objects.count() == 1
    account.refresh_from_db()
    assert account.user_id == user.pk
    assert account.last_login > account.date_joined
    user.refresh_from_db()
    assert user.email == "alice@example.org"

    # Unlink it (the user has a password, so it is allowed).
    page.goto(connections)
    with page.expect_navigation():
        page.get_by_role("button", name=f"Unlink {PROVIDER_NAME}").click()
    if _reauthenticate_if_asked(page, live_server, screenshot, "4b-reauthenticate-to-unlink"):
        page.wait_for_url(connections)
        if SocialAccount.objects.filter(user=user).exists():
            # The unlink was not replayed: press it again.
            with page.expect_navigation():
                page.get_by_role("button", name=f"Unlink {PROVIDER_NAME}").click()
    page.get_by_text("No account is linked yet.").wait_for()
    screenshot(page, "5-unlinked")
    assert not SocialAccount.objects.filter(user=user).exists()
    assert AuditEvent.objects.filter(action="social.unlinked", subject=user).count() == 1
    user.refresh_from_db()
    assert user.is_active
    assert user.has_usable_password()
    assert portal_errors == []
