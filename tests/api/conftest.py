"""Fixtures of the Account API tests: a token client, and verifications."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.actor import Actor
from accounts.models import User
from accounts.services.tokens import token_create
from tests.conftest import PASSWORD

ALL_SCOPES = ["account:read", "account:write"]


class ApiClient(Client):
    """A test client sending a bearer token (and a verification id, when set) with
    every request; JSON bodies by default."""

    def __init__(self, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token
        self.verification: str | None = None

    def _base_environ(self, **request: Any) -> dict[str, Any]:
        environ = super()._base_environ(**request)
        if self.token and "HTTP_AUTHORIZATION" not in environ:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        if self.verification and "HTTP_X_VERIFICATION_ID" not in environ:
            environ["HTTP_X_VERIFICATION_ID"] = self.verification
        return environ

    def generic(
        self, method: str, path: str, data: Any = "", content_type: str | None = None, **extra: Any
    ) -> Any:  # type: ignore[override]
        if content_type is None:
            content_type = "application/json"
        return super().generic(method, path, data, content_type, **extra)

    def post(
        self, path: str, data: Any = None, content_type: str = "application/json", **extra: Any
    ) -> Any:  # type: ignore[override]
        return super().post(
            path, data if data is not None else {}, content_type=content_type, **extra
        )

    def patch(
        self, path: str, data: Any = None, content_type: str = "application/json", **extra: Any
    ) -> Any:  # type: ignore[override]
        return super().patch(
            path, data if data is not None else {}, content_type=content_type, **extra
        )

    def put(
        self, path: str, data: Any = None, content_type: str = "application/json", **extra: Any
    ) -> Any:  # type: ignore[override]
        return super().put(
            path, data if data is not None else {}, content_type=content_type, **extra
        )


def make_token(user: User, scopes: list[str] | None = None, days: int = 30) -> str:
    new = token_create(
        ctx=Actor(user=user, surface="cli"),
        user=user,
        name="test",
        scopes=scopes or ALL_SCOPES,
        expires_at=timezone.now() + timedelta(days=days),
    )
    return new.secret


@pytest.fixture
def token_for() -> Callable[..., str]:
    """token_for(user, scopes=[...]) -> the token text."""
    return make_token


@pytest.fixture
def api(user: User) -> ApiClient:
    """``user`` (alice) calling the API with a token of both scopes."""
    return ApiClient(make_token(user))


@pytest.fixture
def api_for() -> Callable[..., ApiClient]:
    def make(user: User, scopes: list[str] | None = None) -> ApiClient:
        return ApiClient(make_token(user, scopes))

    return make


def verify(client: ApiClient, password: str = PASSWORD) -> str:
    """Proves the client's identity with the password; the client then sends the
    verification id with every request. Returns the id."""
    response = client.post("/api/verifications/password", {"password": password})
    assert response.status_code == 200, response.content
    client.verification = response.json()["verification_id"]
    return client.verification


@pytest.fixture
def verified_api(api: ApiClient) -> ApiClient:
    """``api`` with a fresh identity verification."""
    verify(api)
    return api


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the API's error shape with this status and code."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == code, body
    assert body["message"]
    return body


def management_client(member: User) -> ApiClient:
    """``member`` (staff) calling the Management API with a ``management`` token; a
    second factor is set up for them first (the token needs one)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    if not TOTPDevice.objects.filter(user=member, confirmed=True).exists():
        TOTPDevice.objects.create(user=member, name="Staff app", confirmed=True)
    return ApiClient(make_token(member, ["management"]))
