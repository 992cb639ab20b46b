"""The provider end to end through the test client: an app acting for a user on
the Account API, a machine client on the Management API, and tokens dying with
the account."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from allauth.idp.oidc.models import Token
from django.test import Client

from accounts.actor import Actor
from accounts.models import AppGrant, AuditEvent, User
from accounts.services.moderation import user_suspend
from tests.api.conftest import ApiClient, assert_error
from tests.oauth.conftest import (
    AUTHORIZE,
    REDIRECT_URI,
    TOKEN,
    RegisteredApp,
    authorize,
    authorize_params,
    exchange,
    machine_token,
    pkce_pair,
    register_app,
)


def test_an_app_reads_and_changes_the_account_for_the_user(
    auth_client: Client, user: User, app: RegisteredApp
) -> None:
    code, verifier = authorize(auth_client, app)
    tokens = exchange(app, code, verifier)
    assert tokens.status_code == 200, tokens.content
    body = tokens.json()
    assert body["expires_in"] == 600
    api = ApiClient(body["access_token"])
    read = api.get("/api/my-account")
    assert read.status_code == 200, read.content
    assert read.json()["username"] == "alice"
    changed = api.patch("/api/my-account/profile", {"given_name": "Alicia"})
    assert changed.status_code == 200, changed.content
    user.refresh_from_db()
    assert user.first_name == "Alicia"
    event = AuditEvent.objects.filter(subject=user).latest("id")
    assert event.surface == "app"
    grant = AppGrant.objects.get(user=user, client=app.app)
    assert "account:write" in grant.scopes


def test_a_refresh_token_works_once(auth_client: Client, app: RegisteredApp) -> None:
    code, verifier = authorize(auth_client, app)
    first = exchange(app, code, verifier).json()
    refreshed = Client().post(
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=app.basic(),
    )
    assert refreshed.status_code == 200, refreshed.content
    assert refreshed.json()["refresh_token"] != first["refresh_token"]
    again = Client().post(
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=app.basic(),
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_a_code_used_twice_revokes_the_tokens_it_gave(
    auth_client: Client, app: RegisteredApp
) -> None:
    code, verifier = authorize(auth_client, app)
    first = exchange(app, code, verifier).json()
    assert ApiClient(first["access_token"]).get("/api/my-account").status_code == 200
    replay = exchange(app, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert_error(ApiClient(first["access_token"]).get("/api/my-account"), 401, "unauthenticated")
    assert not Token.objects.filter(client=app.app).exists()


def test_pkce_is_required_with_s256(auth_client: Client, app: RegisteredApp) -> None:
    _verifier, challenge = pkce_pair()
    for extra in ({"code_challenge": ""}, {"code_challenge_method": "plain"}):
        params = authorize_params(app, challenge, **extra)
        response = auth_client.get(f"{AUTHORIZE}?{urlencode(params)}")
        assert response.status_code == 302
        location = urlsplit(response["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
        query = parse_qs(location.query)
        assert query["error"] == ["invalid_request"]
        assert query["state"] == ["st4te"]
        assert "code" not in query


def test_a_redirect_uri_must_match_exactly(auth_client: Client, app: RegisteredApp) -> None:
    _verifier, challenge = pkce_pair()
    for uri in (
        REDIRECT_URI + "?next=x",
        REDIRECT_URI + "/",
        "https://app.example.com:444/callback",
    ):
        params = authorize_params(app, challenge, redirect_uri=uri)
        response = auth_client.get(f"{AUTHORIZE}?{urlencode(params)}")
        assert response.status_code == 200
        assert "Location" not in response
        assert b"has not registered" in response.content


def test_a_suspension_ends_the_apps_tokens(
    auth_client: Client, user: User, staff_user: User, app: RegisteredApp
) -> None:
    code, verifier = authorize(auth_client, app)
    tokens = exchange(app, code, verifier).json()
    user_suspend(ctx=Actor(user=staff_user, surface="admin"), user=user, reason="test")
    assert_error(ApiClient(tokens["access_token"]).get("/api/my-account"), 401, "unauthenticated")
    assert not Token.objects.filter(user=user).exists()
    assert not AppGrant.objects.filter(user=user).exists()


def test_a_machine_client_lists_users_within_its_scopes(machine_for: Any, user: User) -> None:
    machine = machine_for(
        scopes=["users:read", "users:suspend"],
        permissions=["accounts.view_user", "accounts.suspend_user"],
    )
    reply = machine_token(machine, "users:read")
    assert reply.status_code == 200, reply.content
    api = ApiClient(reply.json()["access_token"])
    listed = api.get("/api/management/users")
    assert listed.status_code == 200, listed.content
    assert "alice" in [row["username"] for row in listed.json()["items"]]
    refused = api.post(f"/api/management/users/{user.pk}/suspension", {"reason": "spam"})
    assert_error(refused, 403, "forbidden")
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE
    # The client's account may suspend; with the scope, so may the token.
    both = ApiClient(machine_token(machine, "users:read users:suspend").json()["access_token"])
    done = both.post(f"/api/management/users/{user.pk}/suspension", {"reason": "spam"})
    assert done.status_code == 200, done.content
    user.refresh_from_db()
    assert user.state == User.State.SUSPENDED
    event = AuditEvent.objects.filter(subject=user, action="account.suspended").latest("id")
    assert event.actor == machine.app.machine.account
    assert event.surface == "api"


def test_a_machine_token_is_refused_by_the_account_api(machine_for: Any) -> None:
    machine = machine_for(scopes=["users:read"], permissions=["accounts.view_user"])
    api = ApiClient(machine_token(machine, "users:read").json()["access_token"])
    assert_error(api.get("/api/my-account"), 403, "forbidden")


def test_a_users_app_token_is_refused_by_the_management_api(
    auth_client: Client, app: RegisteredApp
) -> None:
    code, verifier = authorize(auth_client, app)
    api = ApiClient(exchange(app, code, verifier).json()["access_token"])
    assert_error(api.get("/api/management/users"), 403, "forbidden")


def test_deleting_a_machine_client_stops_its_tokens(machine_for: Any) -> None:
    machine = machine_for(scopes=["users:read"], permissions=["accounts.view_user"])
    api = ApiClient(machine_token(machine, "users:read").json()["access_token"])
    assert api.get("/api/management/users").status_code == 200
    machine.app.delete()
    assert_error(api.get("/api/management/users"), 401, "unauthenticated")


def test_discovery_names_only_what_is_offered(db: Any) -> None:
    config = Client().get("/.well-known/openid-configuration").json()
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["response_types_supported"] == ["code"]
    assert "password" not in config["grant_types_supported"]
    assert "implicit" not in config["grant_types_supported"]
    assert "account:read" in config["scopes_supported"]
    jwks = Client().get("/.well-known/jwks.json").json()
    assert jwks["keys"][0]["kty"] == "RSA"
    assert register_app  # the helper the other modules use
