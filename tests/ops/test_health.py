"""/health/live and /health/ready (accounts.health): answers, details only for the
token holder or verified staff, no redirect, session or cookie, and query budgets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.cache.backends.base import BaseCache
from django.db import OperationalError, connection
from django.db.backends.utils import CursorWrapper
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from accounts import health
from tests.conftest import staff_signed_in

TOKEN = "health-token-for-the-tests-0123456789"
ALL_OK = {"database": "ok", "cache": "ok", "migrations": "ok", "task_queue": "ok"}
BEARER = {"Authorization": f"Bearer {TOKEN}"}


class DownCache(BaseCache):
    """A cache server that refuses every connection."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def set(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("connection refused")

    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("connection refused")


@pytest.fixture(autouse=True)
def _health_settings(settings: Any) -> None:
    settings.HEALTH_TOKEN = TOKEN
    health._migrated.clear()


def body(response: Any) -> dict[str, Any]:
    return json.loads(response.content)


# --- live --------------------------------------------------------------------------


@pytest.mark.django_db
def test_live_answers_without_touching_the_database(
    client: Client, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        response = client.get("/health/live")
    assert response.status_code == 200
    assert body(response) == {"status": "ok"}
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    assert response.cookies == {}


@pytest.mark.django_db
def test_live_with_a_signed_in_users_cookie_reads_no_session(
    auth_client: Client, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        response = auth_client.get("/health/live")
    assert response.status_code == 200
    assert response.cookies == {}


@pytest.mark.django_db
def test_live_answers_a_head_request(client: Client) -> None:
    response = client.head("/health/live")
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_other_methods_are_not_allowed(client: Client, path: str, method: str) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.cookies == {}


# --- ready: healthy ----------------------------------------------------------------


@pytest.mark.django_db
def test_ready_anonymous_gets_only_the_status(client: Client) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert body(response) == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]
    assert response.cookies == {}


@pytest.mark.django_db
def test_ready_token_holder_gets_every_check(client: Client) -> None:
    response = client.get("/health/ready", headers=BEARER)
    assert response.status_code == 200
    assert body(response) == {"status": "ok", "checks": ALL_OK}


@pytest.mark.django_db
def test_ready_query_budget_migrations_checked_once(
    client: Client, django_assert_max_num_queries: Any, django_assert_num_queries: Any
) -> None:
    with django_assert_max_num_queries(4):
        assert client.get("/health/ready").status_code == 200
    # Then: SELECT 1 and one read of the task queue; the migrations are not read again.
    with django_assert_num_queries(2):
        assert client.get("/health/ready").status_code == 200


@pytest.mark.django_db
def test_ready_answers_whatever_host_the_load_balancer_sends(client: Client) -> None:
    response = client.get("/health/ready", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200


# --- ready: each check failing -------------------------------------------------------


@pytest.mark.django_db
def test_cache_down(client: Client, settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "tests.ops.test_health.DownCache"}}
    detailed = client.get("/health/ready", headers=BEARER)
    assert detailed.status_code == 503
    assert body(detailed) == {
        "status": "unavailable",
        "checks": {**ALL_OK, "cache": "Unexpected Result: Connection Error"},
    }
    anonymous = client.get("/health/ready")
    assert anonymous.status_code == 503
    assert body(anonymous) == {"status": "unavailable"}


def _leaf_migration() -> str:
    loader = MigrationLoader(connection)
    return loader.graph.leaf_nodes("accounts")[0][1]


@pytest.mark.django_db
def test_unapplied_migration(client: Client) -> None:
    name = _leaf_migration()
    MigrationRecorder(connection).record_unapplied("accounts", name)
    detailed = client.get("/health/ready", headers=BEARER)
    assert detailed.status_code == 503
    assert body(detailed) == {
        "status": "unavailable",
        "checks": {**ALL_OK, "migrations": f"Unavailable: 1 unapplied: accounts.{name}"},
    }
    assert body(client.get("/health/ready")) == {"status": "unavailable"}
    # A failure is checked again on the next call: once applied, the server is ready.
    MigrationRecorder(connection).record_applied("accounts", name)
    assert client.get("/health/ready").status_code == 200


@pytest.mark.django_db
def test_database_error(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, sql: Any, params: Any = None) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(CursorWrapper, "execute", refuse)
    detailed = client.get("/health/ready", headers=BEARER)
    anonymous = client.get("/health/ready")
    monkeypatch.undo()
    assert detailed.status_code == 503
    assert body(detailed) == {
        "status": "unavailable",
        "checks": {
            "database": "Unavailable: server closed the connection unexpectedly",
            "cache": "ok",
            "migrations": "not checked: the database is unavailable",
            "task_queue": "not checked: the database is unavailable",
        },
    }
    assert anonymous.status_code == 503
    assert body(anonymous) == {"status": "unavailable"}


@pytest.mark.django_db
@pytest.mark.parametrize("with_token", [True, False])
def test_task_queue_table_missing(
    client: Client, monkeypatch: pytest.MonkeyPatch, with_token: bool
) -> None:
    from django_tasks_db.models import DBTaskResult

    # One request per test: on PostgreSQL the failed query ends the test's transaction.
    monkeypatch.setattr(DBTaskResult._meta, "db_table", "django_tasks_missing")
    response = client.get("/health/ready", headers=BEARER if with_token else {})
    assert response.status_code == 503
    if not with_token:
        assert body(response) == {"status": "unavailable"}
        return
    expected = {
        "sqlite": "Unavailable: no such table: django_tasks_missing",
        "postgresql": 'Unavailable: relation "django_tasks_missing" does not exist',
    }[connection.vendor]
    assert body(response) == {
        "status": "unavailable",
        "checks": {**ALL_OK, "task_queue": expected},
    }


# --- who sees the details -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ",
        "",
    ],
)
def test_without_the_right_token_no_details(
    client: Client, settings: Any, authorization: str
) -> None:
    settings.CACHES = {"default": {"BACKEND": "tests.ops.test_health.DownCache"}}
    response = client.get("/health/ready", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 503
    assert body(response) == {"status": "unavailable"}


@pytest.mark.django_db
def test_no_token_configured_means_no_details_by_token(client: Client, settings: Any) -> None:
    settings.HEALTH_TOKEN = ""
    response = client.get("/health/ready", HTTP_AUTHORIZATION="Bearer ")
    assert body(response) == {"status": "ok"}


@pytest.mark.django_db
def test_token_is_compared_in_constant_time(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared = []
    original = health.secrets.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(health.secrets, "compare_digest", spy)
    client.get("/health/ready", HTTP_AUTHORIZATION="Bearer nope")
    assert compared == [(b"nope", TOKEN.encode())]


@pytest.mark.django_db
def test_verified_staff_see_the_details(staff_client: Client) -> None:
    response = staff_client.get("/health/ready")
    assert response.status_code == 200
    assert body(response) == {"status": "ok", "checks": ALL_OK}
    assert response.cookies == {}


@pytest.mark.django_db
def test_staff_without_a_verified_second_factor_see_no_details(
    staff_user: Any, client: Client
) -> None:
    client.force_login(staff_user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/health/ready")
    assert body(response) == {"status": "ok"}


@pytest.mark.django_db
def test_a_user_who_is_not_staff_sees_no_details(user_factory: Any) -> None:
    client = staff_signed_in(user_factory())
    response = client.get("/health/ready")
    assert body(response) == {"status": "ok"}


@pytest.mark.django_db
def test_details_for_everyone_with_debug_on(client: Client, settings: Any) -> None:
    settings.DEBUG = True
    response = client.get("/health/ready")
    assert body(response) == {"status": "ok", "checks": ALL_OK}


# --- nothing in the way ------------------------------------------------------------------


@pytest.mark.django_db
def test_plain_http_is_not_redirected_to_https(client: Client, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/accounts/login/").status_code == 301
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200


@pytest.mark.django_db
def test_an_account_scheduled_for_deletion_is_not_redirected(user_factory: Any) -> None:
    from accounts.models import User

    user = user_factory()
    User.objects.filter(pk=user.pk).update(state="pending_deletion", is_active=False)
    client = Client()
    client.force_login(user, backend="accounts.backends.PortalAuthenticationBackend")
    assert client.get("/settings/").status_code == 302
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.cookies == {}


@pytest.mark.django_db
def test_neither_answer_opens_a_session(client: Client) -> None:
    from django.contrib.sessions.models import Session

    client.get("/health/live")
    client.get("/health/ready", headers=BEARER)
    assert Session.objects.count() == 0
    assert client.cookies == {}
