"""The authorization code flow's refusals (redirect URIs, PKCE, codes replayed,
stolen, expired; the implicit and password grants), refresh token rotation, the
access token's life, the account state at introspection and userinfo, and the ID
token checked against the JWKS. The flow that works is in test_provider_core.py."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from allauth.idp.oidc import app_settings as oidc_settings
from allauth.idp.oidc.models import Token
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from accounts.models import AppGrant, User
from accounts.oauth import app_tokens_revoke
from tests.api.conftest import ApiClient, assert_error
from tests.oauth.conftest import (
    AUTHORIZE,
    INTROSPECT,
    REDIRECT_URI,
    REVOKE,
    TOKEN,
    USERINFO,
    RegisteredApp,
    authorize,
    authorize_params,
    exchange,
    introspect,
    pkce_pair,
    refresh,
    register_app,
)

CODE_KEY_PART = "allauth.idp.oidc.authorization_code["


def pending_codes() -> list[str]:
    """The authorization codes waiting in the cache (the tests' local memory cache)."""
    return [key for key in cache._cache if CODE_KEY_PART in key]  # type: ignore[attr-defined]


def location(response: Any) -> tuple[str, dict[str, list[str]]]:
    """The redirect's address without its query, and its query."""
    parts = urlsplit(response["Location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


class CacheClock:
    """The cache's clock, moved by hand: authorization codes live in the cache
    with a timeout, so moving it expires them without waiting."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = time.time()
        fake = SimpleNamespace(time=lambda: self.now)
        monkeypatch.setattr("django.core.cache.backends.locmem.time", fake)
        monkeypatch.setattr("django.core.cache.backends.base.time", fake)

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- The redirect URI ----------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example.com/callback",
        "https://APP.example.com/callback",
        "https://app.example.com/Callback",
        "https://app.example.com/callback?",
        "https://app.example.com/callback#",
        "https://app.example.com:443/callback",
        "https://app.example.com/callback/../callback",
        "https://app.example.com/callback%2F",
        "https://app.example.com.evil.example/callback",
        "https://app.example.com@evil.example/callback",
        "https://evil.example/callback",
        "",
    ],
)
def test_a_redirect_uri_not_registered_exactly_gets_an_error_page_and_no_code(
    auth_client: Client, app: RegisteredApp, uri: str
) -> None:
    _verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge, redirect_uri=uri)
    response = auth_client.get(f"{AUTHORIZE}?{urlencode(params)}")
    assert response.status_code == 200
    assert "Location" not in response
    assert b"has not registered" in response.content
    assert pending_codes() == []


def test_a_loopback_redirect_uri_must_keep_its_port(auth_client: Client) -> None:
    """allauth accepts any port on a loopback address (RFC 8252); the portal asks
    for the registered one."""
    loopback = register_app(redirect_uris=["http://127.0.0.1:8765/callback"])
    _verifier, challenge = pkce_pair()
    params = authorize_params(loopback, challenge, redirect_uri="http://127.0.0.1:9999/callback")
    response = auth_client.get(f"{AUTHORIZE}?{urlencode(params)}")
    assert response.status_code == 200
    assert "Location" not in response
    assert pending_codes() == []


def test_the_token_step_must_name_the_redirect_uri_of_the_authorize_step(
    auth_client: Client,
) -> None:
    other = "https://app.example.com/other-callback"
    two = register_app(redirect_uris=[REDIRECT_URI, other])
    code, verifier = authorize(auth_client, two)
    reply = Client().post(
        TOKEN,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": other,
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=two.basic(),
    )
    assert reply.status_code == 400
    # oauthlib's word for it (RFC 6749 section 5.2 would say invalid_grant).
    assert reply.json()["error"] == "invalid_request"
    assert not Token.objects.exists()
    assert exchange(two, code, verifier).json()["error"] == "invalid_grant"
    assert not Token.objects.exists()


# --- PKCE ----------------------------------------------------------------------------


def test_a_challenge_without_its_method_is_plain_and_refused(
    auth_client: Client, app: RegisteredApp
) -> None:
    """Without ``code_challenge_method`` the challenge is ``plain`` (RFC 7636)."""
    _verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge)
    del params["code_challenge_method"]
    response = auth_client.get(f"{AUTHORIZE}?{urlencode(params)}")
    assert response.status_code == 302
    where, query = location(response)
    assert where == REDIRECT_URI
    assert query["error"] == ["invalid_request"]
    assert "code" not in query
    assert pending_codes() == []


def test_a_refused_pkce_request_never_reaches_the_consent_page(
    auth_client: Client, app: RegisteredApp
) -> None:
    """The consent form is signed at the authorize step: without it, the POST only
    sends the browser back to that step, which refuses again."""
    _verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge, code_challenge_method="plain")
    posted = auth_client.post(AUTHORIZE, {**params, "action": "grant"})
    assert posted.status_code == 302
    again = auth_client.get(posted["Location"])
    assert again.status_code == 302
    _where, query = location(again)
    assert query["error"] == ["invalid_request"]
    assert pending_codes() == []


def test_a_public_client_needs_pkce_too(auth_client: Client) -> None:
    public = register_app(public=True)
    params = authorize_params(public, "")
    del params["code_challenge_method"]
    response = auth_client.get(f"{AUTHORIZE}?{urlencode(params)}")
    assert response.status_code == 302
    _where, query = location(response)
    assert query["error"] == ["invalid_request"]
    assert pending_codes() == []


def test_a_wrong_code_verifier_gets_no_tokens_and_spends_the_code(
    auth_client: Client, app: RegisteredApp
) -> None:
    code, verifier = authorize(auth_client, app)
    wrong, _challenge = pkce_pair()
    reply = exchange(app, code, wrong)
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_grant"
    assert not Token.objects.exists()
    # Whoever sent the wrong verifier may hold a stolen code: it is spent.
    late = exchange(app, code, verifier)
    assert late.status_code == 400
    assert late.json()["error"] == "invalid_grant"
    assert not Token.objects.exists()
    assert not AppGrant.objects.exists()


def test_a_code_without_its_verifier_gets_no_tokens(
    auth_client: Client, app: RegisteredApp
) -> None:
    code, _verifier = authorize(auth_client, app)
    reply = Client().post(
        TOKEN,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        HTTP_AUTHORIZATION=app.basic(),
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_request"
    assert not Token.objects.exists()


# --- Codes replayed, stolen, expired ---------------------------------------------------


def test_a_code_used_twice_revokes_the_refresh_token_and_the_tokens_refreshed_from_it(
    auth_client: Client, user: User, app: RegisteredApp, user_factory: Any
) -> None:
    other_app = register_app(name="Calendar")
    other_code, other_verifier = authorize(auth_client, other_app)
    untouched = exchange(other_app, other_code, other_verifier).json()

    code, verifier = authorize(auth_client, app)
    first = exchange(app, code, verifier).json()
    rotated = refresh(app, first["refresh_token"]).json()
    assert ApiClient(rotated["access_token"]).get("/api/my-account").status_code == 200

    replay = exchange(app, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert_error(ApiClient(first["access_token"]).get("/api/my-account"), 401, "unauthenticated")
    assert_error(ApiClient(rotated["access_token"]).get("/api/my-account"), 401, "unauthenticated")
    refused = refresh(app, rotated["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert not AppGrant.objects.filter(user=user, client=app.app).exists()
    # The user's other app keeps its tokens.
    assert ApiClient(untouched["access_token"]).get("/api/my-account").status_code == 200
    assert AppGrant.objects.filter(user=user, client=other_app.app).exists()


def test_a_code_of_another_client_is_refused_and_stays_its_owners(
    auth_client: Client, user: User, app: RegisteredApp
) -> None:
    """Client B presenting client A's code gets nothing. A's code is untouched:
    B's failure must not let any registered client spend other clients' codes."""
    thief = register_app(name="Thief")
    code, verifier = authorize(auth_client, app)
    stolen = exchange(thief, code, verifier)
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    assert not Token.objects.filter(client=thief.app).exists()
    assert not AppGrant.objects.filter(client=thief.app).exists()

    mine = exchange(app, code, verifier)
    assert mine.status_code == 200, mine.content
    assert Token.objects.filter(client=app.app, user=user).count() == 2


def test_a_code_expires(
    auth_client: Client, app: RegisteredApp, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = CacheClock(monkeypatch)
    lifetime = settings.IDP_OIDC_AUTHORIZATION_CODE_EXPIRES_IN
    assert lifetime == 60

    fresh, fresh_verifier = authorize(auth_client, app)
    stale, stale_verifier = authorize(auth_client, app)
    clock.advance(lifetime - 1)
    assert exchange(app, fresh, fresh_verifier).status_code == 200
    clock.advance(2)
    reply = exchange(app, stale, stale_verifier)
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_grant"
    assert Token.objects.filter(type=Token.Type.ACCESS_TOKEN).count() == 1


# --- Grants that are not offered --------------------------------------------------------


@pytest.mark.parametrize("response_type", ["token", "id_token token", "code id_token"])
def test_the_implicit_and_hybrid_flows_are_refused_even_when_registered(
    auth_client: Client, app: RegisteredApp, response_type: str
) -> None:
    app.app.set_response_types(["code", "token", "id_token token", "code id_token"])
    app.app.set_grant_types(["authorization_code", "implicit", "refresh_token"])
    app.app.save()
    _verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge, response_type=response_type)
    response = auth_client.get(f"{AUTHORIZE}?{urlencode(params)}")
    assert response.status_code == 302
    where, query = location(response)
    assert where == REDIRECT_URI
    assert query["error"] == ["unsupported_response_type"]
    assert query["state"] == ["st4te"]
    assert urlsplit(response["Location"]).fragment == ""
    assert pending_codes() == []
    assert not Token.objects.exists()


@pytest.mark.parametrize(
    "grant",
    [
        {"grant_type": "password", "username": "alice", "password": "whatever"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"},
        {"grant_type": "implicit"},
    ],
)
def test_grants_that_are_not_offered_are_refused(
    user: User, app: RegisteredApp, password: str, grant: dict[str, str]
) -> None:
    app.app.set_grant_types(
        [
            "authorization_code",
            "refresh_token",
            "password",
            "implicit",
            "urn:ietf:params:oauth:grant-type:device_code",
        ]
    )
    app.app.save()
    if grant["grant_type"] == "password":
        grant = {**grant, "password": password}
    reply = Client().post(TOKEN, grant, HTTP_AUTHORIZATION=app.basic())
    assert reply.status_code == 400
    assert reply.json()["error"] == "unsupported_grant_type"
    assert not Token.objects.exists()


def test_an_app_acting_for_a_user_cannot_ask_for_machine_scopes(auth_client: Client) -> None:
    """Even registered with one (the back-office should not allow it): no consent
    page, no code."""
    mixed = register_app(scopes=["openid", "account:read", "users:read"])
    _verifier, challenge = pkce_pair()
    params = authorize_params(mixed, challenge, scope="openid users:read")
    response = auth_client.get(f"{AUTHORIZE}?{urlencode(params)}")
    assert response.status_code == 302
    where, query = location(response)
    assert where == REDIRECT_URI
    assert query["error"] == ["invalid_scope"]
    assert "code" not in query
    assert pending_codes() == []


# --- Refresh tokens ------------------------------------------------------------------


def test_refresh_tokens_rotate_along_a_chain(auth_client: Client, app: RegisteredApp) -> None:
    code, verifier = authorize(auth_client, app)
    tokens = exchange(app, code, verifier).json()
    seen = {tokens["refresh_token"]}
    for _ in range(3):
        previous = tokens["refresh_token"]
        reply = refresh(app, previous)
        assert reply.status_code == 200, reply.content
        tokens = reply.json()
        assert tokens["refresh_token"] not in seen
        seen.add(tokens["refresh_token"])
        assert refresh(app, previous).json()["error"] == "invalid_grant"
        assert ApiClient(tokens["access_token"]).get("/api/my-account").status_code == 200
    assert Token.objects.filter(type=Token.Type.REFRESH_TOKEN).count() == 1


def test_a_refresh_token_works_only_for_its_client(auth_client: Client, app: RegisteredApp) -> None:
    other = register_app(name="Other")
    code, verifier = authorize(auth_client, app)
    tokens = exchange(app, code, verifier).json()
    reply = refresh(other, tokens["refresh_token"])
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_grant"
    assert not Token.objects.filter(client=other.app).exists()
    assert refresh(app, tokens["refresh_token"]).status_code == 200


def test_a_refresh_cannot_widen_the_scopes(auth_client: Client, app: RegisteredApp) -> None:
    code, verifier = authorize(auth_client, app, scope="openid account:read")
    tokens = exchange(app, code, verifier).json()
    reply = refresh(app, tokens["refresh_token"], scope="openid account:read account:write")
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_scope"
    access = Token.objects.get(type=Token.Type.ACCESS_TOKEN)
    assert sorted(access.get_scopes()) == ["account:read", "openid"]


# --- The access token's life -----------------------------------------------------------


def test_an_access_token_lives_ten_minutes(
    auth_client: Client, app: RegisteredApp, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.IDP_OIDC_ACCESS_TOKEN_EXPIRES_IN == 600
    code, verifier = authorize(auth_client, app)
    body = exchange(app, code, verifier).json()
    assert body["expires_in"] == 600
    token = Token.objects.get(type=Token.Type.ACCESS_TOKEN)
    assert token.expires_at is not None
    assert abs((token.expires_at - timezone.now()).total_seconds() - 600) < 5
    api = ApiClient(body["access_token"])
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=590))
    assert api.get("/api/my-account").status_code == 200
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=610))
    assert_error(api.get("/api/my-account"), 401, "unauthenticated")
    assert introspect(app, body["access_token"]) == {"active": False}


def test_an_access_token_in_the_query_string_is_refused(
    auth_client: Client, app: RegisteredApp
) -> None:
    code, verifier = authorize(auth_client, app)
    access = exchange(app, code, verifier).json()["access_token"]
    query = urlencode({"access_token": access})
    assert_error(Client().get(f"/api/my-account?{query}"), 401, "unauthenticated")
    assert Client().get(f"{USERINFO}?{query}").status_code == 401
    # The same token in the header is fine.
    assert ApiClient(access).get("/api/my-account").status_code == 200
    assert ApiClient(access).get(USERINFO).status_code == 200


# --- The account state -----------------------------------------------------------------


@pytest.mark.parametrize("state", [User.State.SUSPENDED, User.State.PENDING_DELETION])
def test_the_tokens_of_an_account_that_may_not_use_the_site_are_inactive(
    auth_client: Client, user: User, app: RegisteredApp, state: User.State
) -> None:
    code, verifier = authorize(auth_client, app)
    tokens = exchange(app, code, verifier).json()
    live = introspect(app, tokens["access_token"])
    assert live["active"] is True
    assert live["client_id"] == app.id
    assert live["sub"] == str(user.pk)
    assert ApiClient(tokens["access_token"]).get(USERINFO).status_code == 200

    # The state changed without the service, so the tokens are still stored: the
    # state itself must stop them.
    User.objects.filter(pk=user.pk).update(state=state, is_active=False)
    assert Token.objects.filter(user=user).count() == 2
    assert introspect(app, tokens["access_token"]) == {"active": False}
    assert introspect(app, tokens["refresh_token"]) == {"active": False}
    assert ApiClient(tokens["access_token"]).get(USERINFO).status_code == 401
    assert_error(ApiClient(tokens["access_token"]).get("/api/my-account"), 401, "unauthenticated")
    refused = refresh(app, tokens["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


def test_introspection_answers_only_the_tokens_own_client(
    auth_client: Client, app: RegisteredApp
) -> None:
    other = register_app(name="Other")
    code, verifier = authorize(auth_client, app)
    access = exchange(app, code, verifier).json()["access_token"]
    assert introspect(other, access) == {"active": False}
    assert introspect(app, access)["active"] is True


def test_introspection_needs_the_clients_secret(auth_client: Client, app: RegisteredApp) -> None:
    code, verifier = authorize(auth_client, app)
    access = exchange(app, code, verifier).json()["access_token"]
    wrong = base64.b64encode(f"{app.id}:not-the-secret".encode()).decode()
    reply = Client().post(INTROSPECT, {"token": access}, HTTP_AUTHORIZATION=f"Basic {wrong}")
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"


# --- The ID token ------------------------------------------------------------------------


def test_the_id_token_verifies_against_the_jwks(
    auth_client: Client, user: User, app: RegisteredApp
) -> None:
    code, verifier = authorize(auth_client, app, nonce="n-0S6_WzA2Mj")
    body = exchange(app, code, verifier).json()
    id_token = body["id_token"]
    jwks = jwt.PyJWKSet.from_dict(Client().get("/.well-known/jwks.json").json())
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == "RS256"
    key = jwks[header["kid"]]
    issuer = Client().get("/.well-known/openid-configuration").json()["issuer"]
    assert issuer == "http://testserver"

    claims = jwt.decode(id_token, key=key, algorithms=["RS256"], audience=app.id, issuer=issuer)
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["sub"] == str(user.pk)
    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@example.org"
    assert claims["exp"] - claims["iat"] == oidc_settings.ID_TOKEN_EXPIRES_IN
    digest = hashlib.sha256(body["access_token"].encode()).digest()
    at_hash = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert claims["at_hash"] == at_hash

    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(id_token, key=key, algorithms=["RS256"], audience="another-app")
    head, payload, signature = id_token.split(".")
    forged = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"alice"', b'"mallory"')
    ).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{head}.{forged}.{signature}", key=key, algorithms=["RS256"], audience=app.id)


# --- prompt=none -------------------------------------------------------------------------


def test_prompt_none_skips_consent_only_for_what_this_app_was_allowed(
    auth_client: Client, user: User, app: RegisteredApp
) -> None:
    """allauth counts the scopes the user allowed any app; the portal counts this
    app's only, so another app cannot get a code without the consent page."""
    code, verifier = authorize(auth_client, app)
    assert exchange(app, code, verifier).status_code == 200
    other = register_app(name="Other")
    _verifier, challenge = pkce_pair()

    silent_other = auth_client.get(
        f"{AUTHORIZE}?{urlencode(authorize_params(other, challenge, prompt='none'))}"
    )
    assert silent_other.status_code == 302
    where, query = location(silent_other)
    assert where == REDIRECT_URI
    assert query["error"] == ["consent_required"]
    assert query["state"] == ["st4te"]
    assert "code" not in query
    assert pending_codes() == []

    # The app the user allowed gets its code without the page (same scopes).
    silent_mine = auth_client.get(
        f"{AUTHORIZE}?{urlencode(authorize_params(app, challenge, prompt='none'))}"
    )
    assert silent_mine.status_code == 302
    _where, query = location(silent_mine)
    assert "code" in query
    # ...until the user revokes it.
    app_tokens_revoke(user=user, client=app.app)
    cache.clear()
    revoked = auth_client.get(
        f"{AUTHORIZE}?{urlencode(authorize_params(app, challenge, prompt='none'))}"
    )
    _where, query = location(revoked)
    assert query["error"] == ["consent_required"]
    assert pending_codes() == []


# --- Client credentials as RFC 6749 sends them ---------------------------------------------

# Every character an RFC 6749 client escapes before HTTP Basic (section 2.3.1),
# like the secrets allauth's admin makes (Django's random secret key).
ODD_SECRET = "s3cr-t_.!~*'()%+@#$^&=:z y"


def test_a_client_that_form_encodes_its_credentials_gets_tokens(auth_client: Client) -> None:
    odd = register_app(secret=ODD_SECRET)
    code, verifier = authorize(auth_client, odd)
    reply = Client().post(
        TOKEN,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=odd.basic_form_encoded(),
    )
    assert reply.status_code == 200, reply.content
    tokens = reply.json()
    # The secret sent as is works too (clients that do not encode, curl -u).
    raw = Client().post(
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        HTTP_AUTHORIZATION=odd.basic(),
    )
    assert raw.status_code == 200, raw.content
    access = raw.json()["access_token"]
    checked = Client().post(
        INTROSPECT, {"token": access}, HTTP_AUTHORIZATION=odd.basic_form_encoded()
    )
    assert checked.json()["active"] is True
    revoked = Client().post(REVOKE, {"token": access}, HTTP_AUTHORIZATION=odd.basic_form_encoded())
    assert revoked.status_code == 200
    assert_error(ApiClient(access).get("/api/my-account"), 401, "unauthenticated")


def test_a_wrong_secret_form_encoded_is_still_wrong(auth_client: Client) -> None:
    odd = register_app(secret=ODD_SECRET)
    code, verifier = authorize(auth_client, odd)
    reply = Client().post(
        TOKEN,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=odd.basic_form_encoded(ODD_SECRET + "!"),
    )
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"
    assert not Token.objects.exists()
