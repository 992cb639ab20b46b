"""Fixtures of the OAuth provider tests: registered apps, a PKCE authorization
through the test client, and machine clients bound to service accounts."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from allauth.idp.oidc.models import Client as App
from django.contrib.auth.models import Group, Permission
from django.test import Client

from accounts.models import MachineClient, User

REDIRECT_URI = "https://app.example.com/callback"
AUTHORIZE = "/identity/o/authorize"
TOKEN = "/identity/o/api/token"
INTROSPECT = "/identity/o/api/introspect"
REVOKE = "/identity/o/api/revoke"
USERINFO = "/identity/o/api/userinfo"


@dataclass
class RegisteredApp:
    app: App
    secret: str

    @property
    def id(self) -> str:
        return self.app.id

    def basic(self) -> str:
        raw = f"{self.app.id}:{self.secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def basic_form_encoded(self, secret: str | None = None) -> str:
        """HTTP Basic as RFC 6749 (section 2.3.1) and openid-client send it: the id
        and the secret form-urlencoded first (every character but letters and
        digits escaped)."""
        raw = f"{form_encode(self.app.id)}:{form_encode(secret or self.secret)}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def form_encode(text: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else quote(c, safe="") for c in text)


def register_app(
    *,
    name: str = "Notes",
    scopes: list[str] | None = None,
    grant_types: list[str] | None = None,
    redirect_uris: list[str] | None = None,
    public: bool = False,
    secret: str | None = None,
) -> RegisteredApp:
    secret = secret or secrets.token_urlsafe(32)
    app = App(name=name, type=App.Type.PUBLIC if public else App.Type.CONFIDENTIAL)
    app.set_secret(secret)
    app.set_scopes(scopes or ["openid", "profile", "email", "account:read", "account:write"])
    app.set_grant_types(grant_types or ["authorization_code", "refresh_token"])
    app.set_redirect_uris(redirect_uris if redirect_uris is not None else [REDIRECT_URI])
    app.set_response_types(["code"])
    app.save()
    return RegisteredApp(app=app, secret=secret)


def register_machine(
    *, scopes: list[str], permissions: list[str], name: str = "Sync", secret: str | None = None
) -> RegisteredApp:
    """A machine client whose service account's group holds ``permissions``
    (``app.codename``) and whose app may ask for ``scopes``."""
    registered = register_app(
        name=name,
        scopes=scopes,
        grant_types=["client_credentials"],
        redirect_uris=[],
        secret=secret,
    )
    account = User(username=f"svc-{registered.id[:12]}", is_staff=True)
    account.set_unusable_password()
    account.save()
    group = Group.objects.create(name=f"machine {registered.id[:12]}")
    for permission in permissions:
        app_label, codename = permission.split(".")
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    account.groups.add(group)
    MachineClient.objects.create(client=registered.app, account=account)
    return registered


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def authorize_params(app: RegisteredApp, challenge: str, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": app.id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email account:read account:write",
        "state": "st4te",
        "nonce": "n0nce",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return params


def authorize(browser: Client, app: RegisteredApp, **extra: str) -> tuple[str, str]:
    """The signed-in ``browser`` allows ``app``; returns (code, verifier)."""
    verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge, **extra)
    page = browser.get(f"{AUTHORIZE}?{urlencode(params)}")
    assert page.status_code == 200, page.content[:500]
    form = page.context["form"]
    response = browser.post(
        AUTHORIZE,
        {
            "request": form.initial["request"],
            "scopes": params["scope"].split(),
            "action": "grant",
        },
    )
    assert response.status_code == 302, response.content[:500]
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    assert query["state"] == ["st4te"]
    return query["code"][0], verifier


def exchange(app: RegisteredApp, code: str, verifier: str) -> Any:
    return Client().post(
        TOKEN,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=app.basic(),
    )


def refresh(app: RegisteredApp, refresh_token: str, **extra: str) -> Any:
    return Client().post(
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
        HTTP_AUTHORIZATION=app.basic(),
    )


def introspect(app: RegisteredApp, token: str) -> Any:
    """What the introspection endpoint tells ``app`` about ``token`` (JSON)."""
    reply = Client().post(INTROSPECT, {"token": token}, HTTP_AUTHORIZATION=app.basic())
    assert reply.status_code == 200, reply.content
    return reply.json()


def machine_token(app: RegisteredApp, scope: str) -> Any:
    return Client().post(
        TOKEN,
        {"grant_type": "client_credentials", "scope": scope},
        HTTP_AUTHORIZATION=app.basic(),
    )


@pytest.fixture
def app(db: Any) -> RegisteredApp:
    return register_app()


@pytest.fixture
def machine_for(db: Any) -> Callable[..., RegisteredApp]:
    return register_machine
