"""Machine clients (client credentials) on the Management API: both the token's
scopes and the service account's permissions must allow a call; revoked tokens,
deactivated service accounts, public clients, wrong secrets, scopes beyond the
client's and user apps are refused. The happy path and the audit are in
test_provider_core.py."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from allauth.idp.oidc.models import Token
from django.test import Client

from accounts.models import AuditEvent, User
from accounts.oauth import client_tokens_revoke
from tests.api.conftest import ApiClient, assert_error
from tests.oauth.conftest import (
    AUTHORIZE,
    REDIRECT_URI,
    TOKEN,
    RegisteredApp,
    authorize_params,
    introspect,
    machine_token,
    pkce_pair,
    register_app,
)

MachineFor = Callable[..., RegisteredApp]


def usernames(reply: Any) -> list[str]:
    return [row["username"] for row in reply.json()["items"]]


def test_a_machine_token_is_short_lived_and_has_no_refresh_token(
    machine_for: MachineFor, user: User
) -> None:
    machine = machine_for(scopes=["users:read"], permissions=["accounts.view_user"])
    reply = machine_token(machine, "users:read")
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["expires_in"] == 600
    assert body["scope"] == "users:read"
    assert "refresh_token" not in body
    assert "id_token" not in body
    token = Token.objects.get(client=machine.app)
    assert token.type == Token.Type.ACCESS_TOKEN
    assert token.user_id is None
    assert "alice" in usernames(ApiClient(body["access_token"]).get("/api/management/users"))


def test_the_scope_without_the_accounts_permission_cannot_suspend(
    machine_for: MachineFor, user: User
) -> None:
    """The token may ask for users:suspend, but the service account's groups do
    not hold the permission: the call is refused all the same."""
    machine = machine_for(
        scopes=["users:read", "users:suspend"], permissions=["accounts.view_user"]
    )
    reply = machine_token(machine, "users:read users:suspend")
    assert reply.status_code == 200, reply.content
    api = ApiClient(reply.json()["access_token"])
    assert "alice" in usernames(api.get("/api/management/users"))
    refused = api.post(f"/api/management/users/{user.pk}/suspension", {"reason": "spam"})
    assert_error(refused, 403, "forbidden")
    user.refresh_from_db()
    assert user.state == User.State.ACTIVE
    assert not AuditEvent.objects.filter(subject=user, action="account.suspended").exists()


def test_a_scope_beyond_the_clients_is_invalid_scope(machine_for: MachineFor) -> None:
    machine = machine_for(
        scopes=["users:read"], permissions=["accounts.view_user", "accounts.suspend_user"]
    )
    for scope in ("users:suspend", "users:read users:suspend", "account:read", "openid"):
        reply = machine_token(machine, scope)
        assert reply.status_code == 400, scope
        assert reply.json()["error"] == "invalid_scope", scope
    assert not Token.objects.exists()


def test_a_machine_token_never_carries_a_users_scope(db: Any) -> None:
    """Even a client registered with both kinds of scope (the back-office should
    not allow it) gets only machine scopes by client credentials."""
    mixed = register_app(
        scopes=["users:read", "account:read", "openid"],
        grant_types=["client_credentials"],
        redirect_uris=[],
    )
    for scope in ("account:read", "users:read openid"):
        reply = machine_token(mixed, scope)
        assert reply.status_code == 400, scope
        assert reply.json()["error"] == "invalid_scope", scope
    assert not Token.objects.exists()
    assert machine_token(mixed, "users:read").status_code == 200


def test_revoking_a_clients_tokens_stops_them_at_once(machine_for: MachineFor) -> None:
    machine = machine_for(scopes=["users:read"], permissions=["accounts.view_user"])
    first = machine_token(machine, "users:read").json()["access_token"]
    second = machine_token(machine, "users:read").json()["access_token"]
    api = ApiClient(first)
    assert api.get("/api/management/users").status_code == 200
    assert introspect(machine, first)["active"] is True

    assert client_tokens_revoke(client=machine.app) == 2
    assert_error(api.get("/api/management/users"), 401, "unauthenticated")
    assert_error(ApiClient(second).get("/api/management/users"), 401, "unauthenticated")
    assert introspect(machine, first) == {"active": False}
    assert not Token.objects.filter(client=machine.app).exists()


def test_revoking_one_clients_tokens_leaves_the_others(machine_for: MachineFor) -> None:
    one = machine_for(scopes=["users:read"], permissions=["accounts.view_user"], name="One")
    two = machine_for(scopes=["users:read"], permissions=["accounts.view_user"], name="Two")
    kept = ApiClient(machine_token(two, "users:read").json()["access_token"])
    machine_token(one, "users:read")
    client_tokens_revoke(client=one.app)
    assert kept.get("/api/management/users").status_code == 200


def test_a_deactivated_service_account_stops_its_clients_tokens(
    machine_for: MachineFor,
) -> None:
    machine = machine_for(scopes=["users:read"], permissions=["accounts.view_user"])
    api = ApiClient(machine_token(machine, "users:read").json()["access_token"])
    assert api.get("/api/management/users").status_code == 200
    account = machine.app.machine.account
    User.objects.filter(pk=account.pk).update(state=User.State.SUSPENDED, is_active=False)
    assert_error(api.get("/api/management/users"), 401, "unauthenticated")


def test_a_public_client_cannot_use_client_credentials(db: Any) -> None:
    """Confidential clients only (RFC 6749 section 4.4), even when a public client
    was registered with the grant and still has a secret."""
    public = register_app(
        public=True, scopes=["users:read"], grant_types=["client_credentials"], redirect_uris=[]
    )
    with_secret = machine_token(public, "users:read")
    assert with_secret.status_code == 400
    assert with_secret.json()["error"] == "unauthorized_client"
    without_secret = Client().post(
        TOKEN, {"grant_type": "client_credentials", "client_id": public.id, "scope": "users:read"}
    )
    assert without_secret.status_code == 400
    assert without_secret.json()["error"] == "unauthorized_client"
    assert not Token.objects.exists()


@pytest.mark.parametrize(
    "credentials",
    [
        "wrong-secret",  # the right id, a wrong secret
        "",  # the id alone
        "unknown-client",  # an id nobody has
    ],
)
def test_a_wrong_secret_is_invalid_client(machine_for: MachineFor, credentials: str) -> None:
    machine = machine_for(scopes=["users:read"], permissions=["accounts.view_user"])
    if credentials == "unknown-client":
        raw = f"unknown-client:{machine.secret}"
    else:
        raw = f"{machine.id}:{credentials}"
    reply = Client().post(
        TOKEN,
        {"grant_type": "client_credentials", "scope": "users:read"},
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(raw.encode()).decode(),
    )
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"
    assert not Token.objects.exists()


def test_a_wrong_secret_in_the_body_is_invalid_client(machine_for: MachineFor) -> None:
    machine = machine_for(scopes=["users:read"], permissions=["accounts.view_user"])
    reply = Client().post(
        TOKEN,
        {
            "grant_type": "client_credentials",
            "scope": "users:read",
            "client_id": machine.id,
            "client_secret": machine.secret + "x",
        },
    )
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"
    right = Client().post(
        TOKEN,
        {
            "grant_type": "client_credentials",
            "scope": "users:read",
            "client_id": machine.id,
            "client_secret": machine.secret,
        },
    )
    assert right.status_code == 200, right.content


def test_a_user_app_cannot_use_client_credentials(app: RegisteredApp) -> None:
    reply = machine_token(app, "account:read")
    assert reply.status_code == 400
    assert reply.json()["error"] == "unauthorized_client"
    assert not Token.objects.exists()


def test_a_client_credentials_token_of_an_app_without_a_service_account_is_refused(
    db: Any, user: User
) -> None:
    """An app given the grant in the back-office without being bound to a service
    account gets a token that opens nothing: no account acts for it."""
    unbound = register_app(
        scopes=["users:read"], grant_types=["client_credentials"], redirect_uris=[]
    )
    reply = machine_token(unbound, "users:read")
    assert reply.status_code == 200, reply.content
    api = ApiClient(reply.json()["access_token"])
    assert_error(api.get("/api/management/users"), 403, "forbidden")
    assert_error(api.get("/api/my-account"), 403, "forbidden")


def test_a_machine_client_cannot_act_for_a_user(
    machine_for: MachineFor, auth_client: Client
) -> None:
    """Its grant types are client credentials only: the authorize step sends the
    browser back with an error, and no code is made."""
    machine = machine_for(scopes=["users:read"], permissions=["accounts.view_user"])
    machine.app.set_redirect_uris([REDIRECT_URI])
    machine.app.save()
    _verifier, challenge = pkce_pair()
    params = authorize_params(machine, challenge, scope="users:read")
    response = auth_client.get(f"{AUTHORIZE}?{urlencode(params)}")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["error"] == ["unauthorized_client"]
    assert "code" not in query
    assert not Token.objects.filter(client=machine.app).exists()


def test_a_machine_client_whose_secret_is_form_encoded_gets_a_token(
    machine_for: MachineFor,
) -> None:
    machine = machine_for(
        scopes=["users:read"], permissions=["accounts.view_user"], secret="a-b_c.d!e~f*g'h(i)j%k+l"
    )
    reply = Client().post(
        TOKEN,
        {"grant_type": "client_credentials", "scope": "users:read"},
        HTTP_AUTHORIZATION=machine.basic_form_encoded(),
    )
    assert reply.status_code == 200, reply.content
    assert ApiClient(reply.json()["access_token"]).get("/api/management/users").status_code == 200
