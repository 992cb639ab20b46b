"""The provider's pages in the portal's look (templates/idp/oidc/): the consent
page (the app's name, its scopes in plain words, the account; Allow and Cancel),
the error page and the sign-out page."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from allauth.account.models import EmailAddress
from allauth.idp.oidc.models import Token
from django.conf import settings
from django.test import Client

from accounts.models import AppGrant, AuditEvent, User
from tests.oauth.conftest import (
    AUTHORIZE,
    REDIRECT_URI,
    RegisteredApp,
    authorize_params,
    exchange,
    pkce_pair,
    register_app,
)

pytestmark = pytest.mark.django_db


def text(response: Any) -> str:
    return unescape(response.content.decode())


def consent_page(browser: Client, app: RegisteredApp, **extra: str) -> Any:
    _verifier, challenge = pkce_pair()
    response = browser.get(f"{AUTHORIZE}?{urlencode(authorize_params(app, challenge, **extra))}")
    assert response.status_code == 200, response.content[:500]
    return response


def signed_request(page: Any) -> str:
    return page.context["form"].initial["request"]


def test_the_consent_page_shows_the_app_its_scopes_and_the_account(
    auth_client: Client, app: RegisteredApp
) -> None:
    page = consent_page(auth_client, app)
    # The portal's template, not allauth's.
    assert page.templates[0].origin.name == str(
        settings.BASE_DIR / "templates" / "idp" / "oidc" / "authorization_form.html"
    )
    html = text(page)
    assert html.count("<h1>") == 1
    assert "<h1>Allow Notes to use your account?</h1>" in html
    # Each scope in plain words, with its own label.
    for scope, label in (
        ("openid", "Know who you are on this site"),
        ("profile", "See your name, username and profile details"),
        ("email", "See your email address"),
        ("account:read", "Read your account settings"),
        ("account:write", "Change your account settings"),
    ):
        box = re.search(
            rf'<input type="checkbox" name="scopes" value="{scope}"[^>]*id="([^"]+)"', html
        )
        assert box is not None, scope
        assert f'<label for="{box.group(1)}">{label}</label>' in html
    assert "account:write" not in re.sub(r'value="[^"]*"', "", html)  # no raw names shown
    # In the provider's order: who you are first, changing your settings last.
    shown = re.findall(r'name="scopes" value="([^"]+)"', html)
    assert shown == ["openid", "profile", "email", "account:read", "account:write"]
    # The account the app will act for.
    assert "<dd>alice</dd>" in html
    assert "<dd>alice@example.org</dd>" in html
    # Where the user goes back to, and the two choices.
    assert "app.example.com" in html
    assert '<button type="submit" name="action" value="grant"' in html
    assert '<button type="submit" name="action" value="cancel"' in html
    assert f'name="request" value="{signed_request(page)}"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    # The portal's look, without inline code (strict CSP).
    assert 'class="entrance"' in html
    assert "<script>" not in html
    assert " style=" not in html
    assert " on" + "click=" not in html


def test_the_page_shows_only_the_scopes_asked_for(auth_client: Client, app: RegisteredApp) -> None:
    html = text(consent_page(auth_client, app, scope="openid account:read"))
    assert "Read your account settings" in html
    assert "Change your account settings" not in html
    assert "See your email address" not in html


def test_the_page_is_served_in_french(auth_client: Client, app: RegisteredApp) -> None:
    auth_client.cookies["django_language"] = "fr"
    page = consent_page(auth_client, app)
    assert '<html lang="fr">' in text(page)


def test_allow_gives_the_app_a_code_for_the_chosen_scopes(
    auth_client: Client, user: User, app: RegisteredApp
) -> None:
    verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge)
    page = auth_client.get(f"{AUTHORIZE}?{urlencode(params)}")
    # The user unticks "change your account settings".
    response = auth_client.post(
        AUTHORIZE,
        {
            "request": signed_request(page),
            "scopes": ["openid", "account:read"],
            "action": "grant",
        },
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    tokens = exchange(app, query["code"][0], verifier).json()
    assert set(tokens["scope"].split()) == {"openid", "account:read"}
    assert AppGrant.objects.get(user=user).scopes == ["account:read", "openid"]


def test_allow_with_no_scope_shows_the_page_again(
    auth_client: Client, user: User, app: RegisteredApp
) -> None:
    page = consent_page(auth_client, app)
    response = auth_client.post(AUTHORIZE, {"request": signed_request(page), "action": "grant"})
    assert response.status_code == 200
    html = text(response)
    assert "This field is required." in html
    assert 'id="consent-scopes-error"' in html
    assert "Allow Notes to use your account?" in html
    assert not AppGrant.objects.exists()


def test_cancel_tells_the_app_access_denied(
    auth_client: Client, user: User, app: RegisteredApp
) -> None:
    page = consent_page(auth_client, app)
    response = auth_client.post(AUTHORIZE, {"request": signed_request(page), "action": "cancel"})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["st4te"]
    assert "code" not in query
    assert not Token.objects.exists()
    assert not AppGrant.objects.exists()
    assert not AuditEvent.objects.filter(action="app.connected").exists()


def test_a_user_with_several_addresses_chooses_the_one_to_share(
    auth_client: Client, user: User, app: RegisteredApp
) -> None:
    EmailAddress.objects.create(user=user, email="work@example.org", verified=True)
    html = text(consent_page(auth_client, app))
    label = re.search(r'<label for="([^"]+)">Email address to share</label>', html)
    assert label is not None
    assert f'<select name="email" id="{label.group(1)}"' in html
    assert '<option value="work@example.org">' in html


def test_allowing_needs_the_pages_csrf_token(user: User, app: RegisteredApp) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    page = consent_page(browser, app)
    data = {"request": signed_request(page), "scopes": ["openid"], "action": "grant"}
    assert browser.post(AUTHORIZE, data).status_code == 403
    assert not AppGrant.objects.exists()
    csrf = browser.cookies["csrftoken"].value
    response = browser.post(AUTHORIZE, {**data, "csrfmiddlewaretoken": csrf})
    assert response.status_code == 302
    assert "code" in parse_qs(urlsplit(response["Location"]).query)


def test_an_unnamed_app_is_named_by_its_id(auth_client: Client) -> None:
    unnamed = register_app(name="")
    html = text(consent_page(auth_client, unnamed))
    assert f"<h1>Allow Unnamed app ({unnamed.id}) to use your account?</h1>" in html


# --- The error page ---------------------------------------------------------------------


def test_an_unknown_app_is_told_in_words(auth_client: Client, app: RegisteredApp) -> None:
    _verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge, client_id="nobody")
    response = auth_client.get(f"{AUTHORIZE}?{urlencode(params)}")
    assert response.status_code == 200
    assert "Location" not in response
    html = text(response)
    assert html.count("<h1>") == 1
    assert "This app is not registered here, so it cannot use your account." in html
    assert "Nothing was shared with the app." in html
    assert "<code>invalid_request</code>" in html
    assert 'class="entrance"' in html
    assert "<script>" not in html


def test_the_portals_own_refusal_is_said_once(auth_client: Client, app: RegisteredApp) -> None:
    _verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge, redirect_uri=REDIRECT_URI + "/")
    html = text(auth_client.get(f"{AUTHORIZE}?{urlencode(params)}"))
    assert html.count("has not registered: nothing was sent to it.") == 1


def test_a_refusal_while_the_section_is_off_is_said(
    auth_client: Client, app: RegisteredApp, policy: Any
) -> None:
    policy(connected_apps="off")
    _verifier, challenge = pkce_pair()
    response = auth_client.get(f"{AUTHORIZE}?{urlencode(authorize_params(app, challenge))}")
    assert response.status_code == 200
    assert "Connecting apps to your account is turned off here." in text(response)


# --- The sign-out page ------------------------------------------------------------------


def test_the_sign_out_page_asks_in_the_portals_look(
    auth_client: Client, app: RegisteredApp
) -> None:
    response = auth_client.get("/identity/o/logout?" + urlencode({"client_id": app.id}))
    assert response.status_code == 200
    html = text(response)
    assert html.count("<h1>") == 1
    assert "Sign out of Account portal?" in html
    assert "Notes sent you here to sign out." in html
    assert f'<input type="hidden" name="client_id" value="{app.id}"' in html
    assert '<button type="submit" name="action" value="logout"' in html
    assert '<button type="submit" name="action" value="stay"' in html
    assert 'name="action" value=""' not in html
    assert "<script>" not in html
    csrf = auth_client.cookies["csrftoken"].value
    stay = auth_client.post(
        "/identity/o/logout",
        {"client_id": app.id, "action": "stay", "csrfmiddlewaretoken": csrf},
    )
    assert stay.status_code == 302
    assert "_auth_user_id" in auth_client.session
    out = auth_client.post(
        "/identity/o/logout",
        {"client_id": app.id, "action": "logout", "csrfmiddlewaretoken": csrf},
    )
    assert out.status_code == 302
    assert "_auth_user_id" not in auth_client.session
