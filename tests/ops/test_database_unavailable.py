"""A database that cannot be reached answers 503 (page, or the API's JSON), with
``Retry-After``, wherever the error is raised: in a view, while a template renders
a lazy queryset, in a middleware (the session), in the API. Never a 500."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.test import Client
from django.urls import path

from accounts.models import User
from portal.urls import urlpatterns as portal_urlpatterns

pytestmark = pytest.mark.django_db


def _locked(request: HttpRequest) -> HttpResponse:
    raise OperationalError("database is locked")


def _gone(request: HttpRequest) -> HttpResponse:
    raise InterfaceError("connection already closed")


class _BrokenQuerySet:
    """What a lazy queryset does when the database goes away while the template
    iterates it."""

    def __iter__(self) -> Any:
        raise OperationalError("server closed the connection unexpectedly")


def _lazy(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "tests_ops_lazy.html", {"rows": _BrokenQuerySet()})


def _bug(request: HttpRequest) -> HttpResponse:
    raise ValueError("a bug, not an outage")


urlpatterns = [
    path("ops-test/locked/", _locked),
    path("ops-test/gone/", _gone),
    path("ops-test/lazy/", _lazy),
    path("ops-test/bug/", _bug),
    *portal_urlpatterns,
]


@pytest.fixture(autouse=True)
def _test_urls(settings: Any, tmp_path: Any) -> None:
    settings.ROOT_URLCONF = __name__
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "tests_ops_lazy.html").write_text("{% for row in rows %}{{ row }}{% endfor %}")
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], folder]}
    ]


def assert_unavailable_page(response: Any, language: str = "en") -> str:
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Language"] == language
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    assert "Traceback" not in html
    # The site's look, with no inline script or style (the CSP forbids them).
    assert '<link rel="stylesheet" href="/static/css/portal.css">' in html
    assert "style=" not in html
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    return html


def test_a_locked_database_in_a_view_is_the_unavailable_page(caplog: Any) -> None:
    with caplog.at_level(logging.WARNING):
        response = Client().get("/ops-test/locked/", HTTP_ACCEPT_LANGUAGE="en")
    html = assert_unavailable_page(response)
    assert "<h1>Briefly unavailable</h1>" in html
    assert "The site cannot reach its data for a moment. Please try again in a few seconds." in html
    # One line: Django's own "Service Unavailable: <path>" is left out.
    (record,) = caplog.records
    assert record.name == "accounts.unavailable"
    assert record.getMessage() == (
        "Database unavailable, answered 503 to GET ops-test/locked/: database is locked"
    )


def test_a_closed_connection_is_the_unavailable_page() -> None:
    assert_unavailable_page(Client().get("/ops-test/gone/"))


def test_the_page_follows_the_visitors_language() -> None:
    assert_unavailable_page(
        Client().get("/ops-test/locked/", HTTP_ACCEPT_LANGUAGE="fr"), language="fr"
    )


def test_a_lazy_queryset_failing_while_the_template_renders() -> None:
    assert_unavailable_page(Client().get("/ops-test/lazy/"))


def test_the_session_middleware_failing_is_a_503_not_a_500(
    auth_client: Client, monkeypatch: Any, caplog: Any
) -> None:
    """Raised in a middleware, the error becomes a 500 at that middleware's layer;
    the outer middleware replaces it. (The test client would re-raise it: a server
    has no such listener.)"""
    from django.contrib.sessions.backends.db import SessionStore

    reads = []

    def fail(self: Any) -> Any:
        reads.append(self.session_key)
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(SessionStore, "_get_session_from_db", fail)
    auth_client.raise_request_exception = False
    session_key = auth_client.cookies["sessionid"].value
    with caplog.at_level(logging.WARNING):
        response = auth_client.get("/settings/")
    html = assert_unavailable_page(response)
    assert "Sign out" not in html  # nothing read from the session that failed
    # One line, not Django's "Internal Server Error" with the traceback beside it.
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        (
            "accounts.unavailable",
            "Database unavailable, answered 503 to GET <unresolved>: "
            "the database system is shutting down",
        )
    ]
    # Read once: the other middlewares do not wait for the database again.
    assert reads == [session_key]
    # The visitor's session cookie is left alone.
    assert "sessionid" not in response.cookies
    assert auth_client.cookies["sessionid"].value == session_key


def test_debug_on_still_shows_no_traceback(
    auth_client: Client, monkeypatch: Any, settings: Any
) -> None:
    from django.contrib.sessions.backends.db import SessionStore

    def fail(self: Any) -> Any:
        raise OperationalError("could not connect to server")

    settings.DEBUG = True
    monkeypatch.setattr(SessionStore, "_get_session_from_db", fail)
    auth_client.raise_request_exception = False
    assert_unavailable_page(auth_client.get("/settings/"))


def assert_unavailable_json(response: Any) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "code": "service_unavailable",
        "message": "The service is briefly unavailable. Please try again in a moment.",
        "details": {},
    }


@pytest.mark.parametrize("debug", [False, True])
def test_the_api_answers_its_json_shape(
    auth_client: Client, monkeypatch: Any, settings: Any, debug: bool
) -> None:
    """Raised inside an API operation (ninja would show a traceback with debug on)."""
    import accounts.api.routers.account as account_router

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("could not receive data from server")

    settings.DEBUG = debug
    monkeypatch.setattr(account_router, "account_data", fail)
    assert_unavailable_json(auth_client.get("/api/my-account"))


def test_the_api_answers_its_json_shape_when_a_middleware_fails(
    auth_client: Client, monkeypatch: Any
) -> None:
    from django.contrib.sessions.backends.db import SessionStore

    def fail(self: Any) -> Any:
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(SessionStore, "_get_session_from_db", fail)
    auth_client.raise_request_exception = False
    assert_unavailable_json(auth_client.get("/api/my-account"))


def test_the_pool_timeout_is_an_outage_too() -> None:
    from psycopg_pool import PoolTimeout

    from accounts.unavailable import is_database_unavailable

    assert is_database_unavailable(PoolTimeout("couldn't get a connection after 10.00 sec"))


def test_other_errors_stay_server_errors() -> None:
    client = Client(raise_request_exception=False)
    response = client.get("/ops-test/bug/")
    assert response.status_code == 500
    assert "Retry-After" not in response


def test_the_site_works_again_once_the_database_answers(user: User) -> None:
    """Nothing is kept from the failed request: the next one is served."""
    client = Client()
    assert client.get("/ops-test/locked/").status_code == 503
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/settings/").status_code == 200


# --- The database settings ---------------------------------------------------------------


def test_the_pool_checks_each_connection_before_handing_it_out() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's (DATABASE_URL=postgres://...)")
    from psycopg_pool import ConnectionPool

    pool = connection.pool
    assert pool is not None
    assert pool._check == ConnectionPool.check_connection


def test_sqlite_waits_for_a_lock_before_giving_up() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's busy timeout (the suite runs on PostgreSQL)")
    assert connection.settings_dict["OPTIONS"]["timeout"] == 20
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
