"""Connected apps: the OAuth apps a user allowed, on the settings page
(/settings/apps/) and through the Account API (/api/my-account/connected-apps);
revoking one ends its tokens at once. Policy field ``connected_apps``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from allauth.idp.oidc.models import Token
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.timezone import localtime

from accounts.impersonation import STARTED_KEY
from accounts.models import AppGrant, AuditEvent, User
from accounts.services.audit import Action
from tests.api.conftest import ApiClient, assert_error, make_token, verify
from tests.conftest import reauthenticate
from tests.oauth.conftest import TOKEN, RegisteredApp, authorize, exchange, register_app

pytestmark = pytest.mark.django_db

URL = "/settings/apps/"
API = "/api/my-account/connected-apps"


# --- Helpers ----------------------------------------------------------------------------


def text(response: Any) -> str:
    return unescape(response.content.decode())


def subjects() -> list[str]:
    return [str(m.subject) for m in mail.outbox]


def connect(browser: Client, app: RegisteredApp, **extra: str) -> dict[str, Any]:
    """The signed-in ``browser`` allows ``app``, which takes its tokens."""
    code, verifier = authorize(browser, app, **extra)
    response = exchange(app, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()


def grant_of(user: User, app: RegisteredApp) -> AppGrant:
    return AppGrant.objects.get(user=user, client=app.app)


def revoke_url(grant: AppGrant | int) -> str:
    return reverse("connected_app_revoke", args=[grant if isinstance(grant, int) else grant.pk])


def refresh(app: RegisteredApp, refresh_token: str) -> Any:
    return Client().post(
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        HTTP_AUTHORIZATION=app.basic(),
    )


def browser_of(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def impersonated(user: User, staff: User) -> Client:
    client = browser_of(user)
    reauthenticate(client)
    session = client.session
    session["hijack_history"] = [str(staff.pk)]
    session[STARTED_KEY] = time.time()
    session.save()
    return client


def settings_area(html: str) -> str:
    return html.split('class="settings-content"')[1].split("</main>")[0]


@pytest.fixture
def signed_in(auth_client: Client) -> Client:
    """alice, recently re-authenticated."""
    reauthenticate(auth_client)
    return auth_client


@pytest.fixture
def bob(user_factory: Callable[..., User]) -> User:
    return user_factory(username="bob")


# --- Connecting an app ------------------------------------------------------------------


def test_allowing_an_app_is_audited_and_told_once(
    auth_client: Client, user: User, app: RegisteredApp
) -> None:
    tokens = connect(auth_client, app, scope="openid account:read")
    event = AuditEvent.objects.get(action=Action.APP_CONNECTED)
    assert (event.actor, event.subject) == (user, user)
    assert event.data == {"app": "Notes", "client_id": app.id, "scopes": ["account:read", "openid"]}
    # In the user's name, from the browser that allowed it (not the app's server).
    assert event.surface == "web"
    assert event.ip_address == "127.0.0.1"
    assert subjects() == ["[Account portal] An app was connected to your account"]
    body = mail.outbox[0].body
    assert "“Notes”" in body
    assert "Read your account settings" in body
    assert "Know who you are on this site" in body
    # Refreshing, and allowing the same app again, connect nothing new.
    assert refresh(app, tokens["refresh_token"]).status_code == 200
    connect(auth_client, app)
    assert AuditEvent.objects.filter(action=Action.APP_CONNECTED).count() == 1
    assert len(mail.outbox) == 1
    assert grant_of(user, app).scopes == [
        "account:read",
        "account:write",
        "email",
        "openid",
        "profile",
    ]


# --- The page ---------------------------------------------------------------------------


def test_urls() -> None:
    assert reverse("connected_apps") == URL
    assert revoke_url(7) == "/settings/apps/7/revoke/"


def test_page_lists_only_the_users_own_apps(
    auth_client: Client, user: User, bob: User, app: RegisteredApp
) -> None:
    connect(auth_client, app, scope="openid email account:read")
    other = register_app(name="Bob's Planner")
    connect(browser_of(bob), other)
    response = auth_client.get(URL)
    assert response.status_code == 200
    html = text(response)
    assert html.count("<h1>") == 1
    assert "Notes" in html
    for label in (
        "Know who you are on this site",
        "See your email address",
        "Read your account settings",
    ):
        assert f"<li>{label}</li>" in html
    assert "Change your account settings" not in html  # not asked for
    assert "Bob's Planner" not in html
    grant = grant_of(user, app)
    assert f'<time datetime="{localtime(grant.created_at).isoformat()}">' in html
    assert revoke_url(grant) in html
    assert revoke_url(grant_of(bob, other)) not in html
    assert f'<a href="{URL}" aria-current="page">' in html
    assert "<script>" not in html
    assert " style=" not in html


def test_no_app_says_so(auth_client: Client) -> None:
    assert "You have not allowed any app to use your account." in text(auth_client.get(URL))


def test_requires_sign_in(client: Client, user: User, app: RegisteredApp) -> None:
    connect(browser_of(user), app)
    grant = grant_of(user, app)
    for response in (client.get(URL), client.post(revoke_url(grant))):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    assert AppGrant.objects.filter(pk=grant.pk).exists()


# --- Revoking ---------------------------------------------------------------------------


def test_revoke_ends_the_apps_tokens_at_once(
    signed_in: Client, user: User, app: RegisteredApp
) -> None:
    tokens = connect(signed_in, app)
    api = ApiClient(tokens["access_token"])
    assert api.get("/api/my-account").status_code == 200
    other = register_app(name="Calendar")
    others = connect(signed_in, other)
    mail.outbox.clear()
    grant = grant_of(user, app)

    response = signed_in.post(revoke_url(grant))
    assert response.status_code == 302
    assert response["Location"] == URL
    assert not AppGrant.objects.filter(pk=grant.pk).exists()
    assert not Token.objects.filter(user=user, client=app.app).exists()
    assert_error(api.get("/api/my-account"), 401, "unauthenticated")
    refused = refresh(app, tokens["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    event = AuditEvent.objects.get(action=Action.APP_REVOKED)
    assert (event.actor, event.subject, event.surface) == (user, user, "web")
    assert event.data["app"] == "Notes"
    assert event.data["client_id"] == app.id
    assert subjects() == ["[Account portal] An app's access to your account was revoked"]
    assert "“Notes” can no longer use your account" in mail.outbox[0].body
    page = text(signed_in.get(URL))
    assert "“Notes” can no longer use your account." in page
    assert "Calendar" in page
    # The other app keeps working.
    assert ApiClient(others["access_token"]).get("/api/my-account").status_code == 200


def test_revoking_needs_a_recent_reauthentication(
    auth_client: Client, user: User, app: RegisteredApp
) -> None:
    tokens = connect(auth_client, app)
    grant = grant_of(user, app)
    response = auth_client.post(revoke_url(grant))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert AppGrant.objects.filter(pk=grant.pk).exists()
    assert ApiClient(tokens["access_token"]).get("/api/my-account").status_code == 200
    # Re-authenticating replays the kept request.
    from tests.conftest import PASSWORD

    replayed = auth_client.post(response["Location"], {"password": PASSWORD})
    assert replayed.status_code == 302
    assert replayed["Location"] == URL
    assert not AppGrant.objects.filter(pk=grant.pk).exists()


def test_someone_elses_grant_is_a_404(signed_in: Client, bob: User) -> None:
    other = register_app(name="Bob's Planner")
    tokens = connect(browser_of(bob), other)
    mail.outbox.clear()
    grant = grant_of(bob, other)
    assert signed_in.post(revoke_url(grant)).status_code == 404
    assert AppGrant.objects.filter(pk=grant.pk).exists()
    assert ApiClient(tokens["access_token"]).get("/api/my-account").status_code == 200
    assert not AuditEvent.objects.filter(action=Action.APP_REVOKED).exists()
    assert not mail.outbox


@pytest.mark.parametrize("pk", ["999999", str(2**63), str(2**70)])
def test_an_unknown_grant_is_a_404(signed_in: Client, pk: str) -> None:
    assert signed_in.post(f"{URL}{pk}/revoke/").status_code == 404


def test_writes_are_post_only(signed_in: Client, user: User, app: RegisteredApp) -> None:
    connect(signed_in, app)
    grant = grant_of(user, app)
    assert signed_in.get(revoke_url(grant)).status_code == 405
    assert signed_in.post(URL).status_code == 405
    assert AppGrant.objects.filter(pk=grant.pk).exists()


def test_csrf_is_enforced(user: User, app: RegisteredApp) -> None:
    connect(browser_of(user), app)
    grant = grant_of(user, app)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session["account_authentication_methods_user"] = str(user.pk)
    session["account_authentication_methods"] = [
        {"method": "password", "at": time.time(), "reauthenticated": True}
    ]
    session.save()
    assert client.post(revoke_url(grant)).status_code == 403
    assert AppGrant.objects.filter(pk=grant.pk).exists()
    client.get(URL)
    csrf = client.cookies["csrftoken"].value
    response = client.post(revoke_url(grant), {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302
    assert not AppGrant.objects.filter(pk=grant.pk).exists()


# --- The policy -------------------------------------------------------------------------


def test_off_hides_the_section_and_stops_the_apps(
    signed_in: Client, user: User, app: RegisteredApp, policy: Any
) -> None:
    tokens = connect(signed_in, app)
    grant = grant_of(user, app)
    policy(connected_apps="off")
    assert signed_in.get(URL).status_code == 404
    assert signed_in.post(revoke_url(grant)).status_code == 404
    assert f'href="{URL}"' not in text(signed_in.get(reverse("settings_home")))
    assert_error(ApiClient(tokens["access_token"]).get("/api/my-account"), 401, "unauthenticated")
    assert AppGrant.objects.filter(pk=grant.pk).exists()


def test_read_only_lists_without_controls(
    signed_in: Client, user: User, app: RegisteredApp, policy: Any
) -> None:
    tokens = connect(signed_in, app)
    grant = grant_of(user, app)
    policy(connected_apps="read_only")
    response = signed_in.get(URL)
    assert response.status_code == 200
    html = text(response)
    assert "Notes" in html
    assert revoke_url(grant) not in html
    assert 'method="post"' not in settings_area(html)
    assert f'href="{URL}"' in text(signed_in.get(reverse("settings_home")))
    assert signed_in.post(revoke_url(grant)).status_code == 403
    assert AppGrant.objects.filter(pk=grant.pk).exists()
    # The app keeps working: the user sees it, only cannot revoke it here.
    assert ApiClient(tokens["access_token"]).get("/api/my-account").status_code == 200


def test_master_switch_off(signed_in: Client, user: User, app: RegisteredApp, policy: Any) -> None:
    connect(signed_in, app)
    grant = grant_of(user, app)
    policy(enabled=False)
    response = signed_in.get(URL)
    assert response.status_code == 200
    assert "turned off" in text(response)
    assert "Notes" not in settings_area(text(response))
    assert signed_in.post(revoke_url(grant)).status_code == 403
    assert AppGrant.objects.filter(pk=grant.pk).exists()


def test_impersonating_staff_cannot_revoke(
    user: User, staff_user: User, app: RegisteredApp
) -> None:
    tokens = connect(browser_of(user), app)
    grant = grant_of(user, app)
    client = impersonated(user, staff_user)
    assert client.get(URL).status_code == 200
    assert client.post(revoke_url(grant)).status_code == 403
    assert AppGrant.objects.filter(pk=grant.pk).exists()
    assert ApiClient(tokens["access_token"]).get("/api/my-account").status_code == 200
    assert not AuditEvent.objects.filter(action=Action.APP_REVOKED).exists()


# --- Query budget -----------------------------------------------------------------------


def test_query_budget_does_not_grow_with_apps(
    auth_client: Client, user: User, django_assert_max_num_queries: Any
) -> None:
    def add_apps(count: int) -> None:
        for _ in range(count):
            registered = register_app(name=f"App {AppGrant.objects.count()}")
            AppGrant.objects.create(user=user, client=registered.app, scopes=["openid"])

    def measure() -> int:
        with django_assert_max_num_queries(5), CaptureQueriesContext(connection) as ctx:
            assert auth_client.get(URL).status_code == 200
        return len(ctx.captured_queries)

    auth_client.get(URL)
    add_apps(1)
    few = measure()
    add_apps(19)
    assert measure() == few
    assert text(auth_client.get(URL)).count('action="/settings/apps/') == 20


# --- The data export --------------------------------------------------------------------


def test_the_export_lists_connected_apps_without_tokens(
    signed_in: Client, user: User, app: RegisteredApp
) -> None:
    tokens = connect(signed_in, app, scope="openid account:read")
    response = signed_in.post(reverse("export"))
    assert response.status_code == 200
    raw = response.content
    data = json.loads(raw)
    grant = grant_of(user, app)
    assert data["connected_apps"] == [
        {
            "name": "Notes",
            "client_id": app.id,
            "scopes": ["openid", "account:read"],
            "permissions": ["Know who you are on this site", "Read your account settings"],
            "first_used": grant.created_at.isoformat(),
            "last_used": grant.last_used_at.isoformat() if grant.last_used_at else None,
        }
    ]
    for secret in (tokens["access_token"], tokens["refresh_token"], app.secret):
        assert secret not in raw.decode()


# --- The Account API --------------------------------------------------------------------


def api_one(pk: int | str) -> str:
    return f"{API}/{pk}"


def test_api_lists_the_users_apps(user: User, bob: User, app: RegisteredApp) -> None:
    connect(browser_of(user), app, scope="openid account:read")
    connect(browser_of(bob), register_app(name="Bob's Planner"))
    reader = ApiClient(make_token(user, ["account:read"]))
    response = reader.get(API)
    assert response.status_code == 200, response.content
    grant = grant_of(user, app)
    [item] = response.json()
    assert item["id"] == grant.pk
    assert item["name"] == "Notes"
    assert item["client_id"] == app.id
    assert item["scopes"] == [
        {"scope": "openid", "description": "Know who you are on this site"},
        {"scope": "account:read", "description": "Read your account settings"},
    ]
    assert item["first_used_at"]
    assert "token" not in json.dumps(item).lower()


def test_api_list_needs_the_read_scope(user: User) -> None:
    writer = ApiClient(make_token(user, ["account:write"]))
    assert_error(writer.get(API), 403, "token.insufficient_scope")


def test_api_revoke(user: User, app: RegisteredApp) -> None:
    tokens = connect(browser_of(user), app)
    mail.outbox.clear()
    grant = grant_of(user, app)
    api = ApiClient(make_token(user))
    verify(api)
    response = api.delete(api_one(grant.pk))
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Notes"
    assert not AppGrant.objects.filter(pk=grant.pk).exists()
    assert_error(ApiClient(tokens["access_token"]).get("/api/my-account"), 401, "unauthenticated")
    assert refresh(app, tokens["refresh_token"]).status_code == 400
    event = AuditEvent.objects.get(action=Action.APP_REVOKED)
    assert event.surface == "token"
    assert event.data["client_id"] == app.id
    assert subjects() == ["[Account portal] An app's access to your account was revoked"]
    assert api.get(API).json() == []


def test_api_revoke_needs_the_write_scope(user: User, app: RegisteredApp) -> None:
    connect(browser_of(user), app)
    grant = grant_of(user, app)
    reader = ApiClient(make_token(user, ["account:read"]))
    reader.verification = verify(ApiClient(make_token(user, ["account:write"])))
    assert_error(reader.delete(api_one(grant.pk)), 403, "token.insufficient_scope")
    assert AppGrant.objects.filter(pk=grant.pk).exists()


def test_api_revoke_needs_a_verification(user: User, app: RegisteredApp) -> None:
    connect(browser_of(user), app)
    grant = grant_of(user, app)
    assert_error(
        ApiClient(make_token(user)).delete(api_one(grant.pk)), 401, "verification.required"
    )
    assert AppGrant.objects.filter(pk=grant.pk).exists()


def test_api_someone_elses_grant_is_404(user: User, bob: User) -> None:
    other = register_app(name="Bob's Planner")
    connect(browser_of(bob), other)
    grant = grant_of(bob, other)
    api = ApiClient(make_token(user))
    verify(api)
    assert_error(api.delete(api_one(grant.pk)), 404, "not_found")
    assert AppGrant.objects.filter(pk=grant.pk).exists()


@pytest.mark.parametrize("pk", ["0", "-1", "999999", str(2**63), str(2**70)])
def test_api_unknown_ids_are_404(user: User, pk: str) -> None:
    api = ApiClient(make_token(user))
    verify(api)
    assert_error(api.delete(api_one(pk)), 404, "not_found")


@pytest.mark.parametrize("pk", ["abc", "1.5", "%00"])
def test_api_malformed_ids_are_422(user: User, pk: str) -> None:
    api = ApiClient(make_token(user))
    verify(api)
    assert_error(api.delete(api_one(pk)), 422, "validation_error")


def test_api_follows_the_policy(user: User, app: RegisteredApp, policy_modes: Any) -> None:
    connect(browser_of(user), app)
    grant = grant_of(user, app)
    api = ApiClient(make_token(user))
    verify(api)
    policy_modes(connected_apps="read_only")
    assert api.get(API).status_code == 200
    assert_error(api.delete(api_one(grant.pk)), 403, "policy.field_not_editable")
    policy_modes(connected_apps="edit", enabled=False)
    assert_error(api.delete(api_one(grant.pk)), 403, "policy.not_enabled")
    policy_modes(connected_apps="off", enabled=True)
    assert_error(api.get(API), 404, "policy.field_not_enabled")
    assert_error(api.delete(api_one(grant.pk)), 404, "policy.field_not_enabled")
    assert AppGrant.objects.filter(pk=grant.pk).exists()


def test_api_impersonating_staff_cannot_revoke(
    user: User, staff_user: User, app: RegisteredApp
) -> None:
    connect(browser_of(user), app)
    grant = grant_of(user, app)
    client = impersonated(user, staff_user)
    assert client.get(API).status_code == 200
    assert_error(client.delete(api_one(grant.pk)), 403, "impersonation.refused")
    assert AppGrant.objects.filter(pk=grant.pk).exists()


def test_api_list_query_budget_does_not_grow_with_apps(
    user: User, django_assert_max_num_queries: Any
) -> None:
    api = ApiClient(make_token(user, ["account:read"]))

    def measure() -> int:
        with django_assert_max_num_queries(4), CaptureQueriesContext(connection) as ctx:
            assert api.get(API).status_code == 200
        return len(ctx.captured_queries)

    for count in (1, 19):
        for _ in range(count):
            registered = register_app(name=f"App {AppGrant.objects.count()}")
            AppGrant.objects.create(user=user, client=registered.app, scopes=["openid"])
        if count == 1:
            api.get(API)
            few = measure()
    assert measure() == few


def test_an_app_cannot_see_or_manage_the_accounts_credentials(
    auth_client: Client, user: User, app: RegisteredApp
) -> None:
    """With account:read and account:write, an app still cannot list or make personal
    access tokens, nor list or revoke connected apps: a token it made itself would
    outlive its revocation."""
    other = register_app(name="Calendar")
    code, verifier = authorize(auth_client, other)
    exchange(other, code, verifier)
    code, verifier = authorize(auth_client, app)
    api = ApiClient(exchange(app, code, verifier).json()["access_token"])
    verify(api)
    grant = AppGrant.objects.get(user=user, client=other.app)
    for method, path, body in (
        ("get", "/api/my-account/tokens", None),
        (
            "post",
            "/api/my-account/tokens",
            {
                "name": "mine",
                "scopes": ["account:read"],
                "expires_at": (timezone.now() + timedelta(days=30)).isoformat(),
            },
        ),
        ("get", "/api/my-account/connected-apps", None),
        ("delete", f"/api/my-account/connected-apps/{grant.pk}", None),
    ):
        call = getattr(api, method)
        response = call(path, body) if body is not None else call(path)
        assert_error(response, 403, "forbidden")
    assert not user.access_tokens.exists()
    assert AppGrant.objects.filter(pk=grant.pk).exists()
    # The same calls with the user's own personal access token work.
    own = ApiClient(make_token(user))
    assert own.get("/api/my-account/connected-apps").status_code == 200
