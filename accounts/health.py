"""Health endpoints for a load balancer or an orchestrator.

- ``/health/live``: the process answers. No database, no cache, no session.
- ``/health/ready``: the database, the cache, the migrations and the task queue (the
  ``django_tasks_db`` table) all answer. 200 when ready, 503 when not.

They are answered by ``HealthMiddleware``, placed right after WhiteNoise and before
the portal's own middleware, so nothing can turn them into a redirect (sign-in,
pending deletion, impersonation expiry), open a session, set a cookie or check the
Host header: a load balancer probes each app server by its address, over plain HTTP
(``SECURE_REDIRECT_EXEMPT`` exempts them from the HTTPS redirect).

The checks are django-health-check's (``Database``, ``Cache``) plus two of our own on
its ``HealthCheck`` base (``Migrations``, ``TaskQueue``). Its view is not used: it
shows every caller which check failed and why, answers 500 rather than 503, and its
HTML page carries an inline style the Content-Security-Policy forbids. Here an
anonymous caller gets only the status word when debug is off; the details go to a
request with ``Authorization: Bearer <HEALTH_TOKEN>`` or to signed-in staff with a
verified second factor (the back-office's own door).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import secrets
from collections.abc import Callable
from importlib import import_module

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import auth
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.utils.functional import SimpleLazyObject
from django_otp.middleware import OTPMiddleware
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import HealthCheckException, ServiceUnavailable

logger = logging.getLogger("portal.health")

LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"


@dataclasses.dataclass
class Migrations(HealthCheck):
    """Every migration of this code is applied. Checked until it succeeds once in
    this process, then no more: a deployment with new migrations starts new
    processes, and building the migration graph is the costly part."""

    alias: str = "default"

    def run(self) -> None:
        if self.alias in _migrated:
            return
        try:
            executor = MigrationExecutor(connections[self.alias])
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as exc:
            raise ServiceUnavailable(str(exc).split("\n")[0]) from exc
        if plan:
            names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:3])
            more = f" and {len(plan) - 3} more" if len(plan) > 3 else ""
            raise ServiceUnavailable(f"{len(plan)} unapplied: {names}{more}")
        _migrated.add(self.alias)


_migrated: set[str] = set()


@dataclasses.dataclass
class TaskQueue(HealthCheck):
    """The task worker's queue (django-tasks-db's table) can be read."""

    def run(self) -> None:
        from django_tasks_db.models import DBTaskResult

        try:
            DBTaskResult.objects.exists()
        except DatabaseError as exc:
            raise ServiceUnavailable(str(exc).split("\n")[0]) from exc


# Name, check, and whether it needs the database (skipped when the database is down).
CHECKS: tuple[tuple[str, HealthCheck, bool], ...] = (
    ("database", Database(), False),
    ("cache", Cache(key_prefix="portal_health"), False),
    ("migrations", Migrations(), True),
    ("task_queue", TaskQueue(), True),
)


def _run(check: HealthCheck) -> str | None:
    """The check's error as text, or None. Synchronous checks run in this thread (the
    request's own database connection); the library's asynchronous ones (the cache)
    in a short event loop."""
    try:
        if inspect.iscoroutinefunction(check.run):
            async_to_sync(check.run)()
        else:
            check.run()
    except HealthCheckException as exc:
        logger.warning("Health check %r failed: %s", check, exc)
        return str(exc)
    except Exception:
        logger.exception("Health check %r failed unexpectedly", check)
        return "Unknown Error: unexpected exception (see the server's log)"
    return None


def run_checks() -> dict[str, str]:
    """Each check's result: ``"ok"`` or why it failed."""
    results: dict[str, str] = {}
    database_down = False
    for name, check, needs_database in CHECKS:
        if needs_database and database_down:
            results[name] = "not checked: the database is unavailable"
            continue
        error = _run(check)
        results[name] = error or "ok"
        if name == "database" and error:
            database_down = True
    return results


def _bearer_token_matches(request: HttpRequest) -> bool:
    expected = settings.HEALTH_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return secrets.compare_digest(given.strip().encode(), expected.encode())


def _is_verified_staff(request: HttpRequest) -> bool:
    """Signed-in staff with a verified second factor, read from the session cookie
    without going through the session middleware (this answer never saves a session
    or sets a cookie)."""
    if not request.COOKIES.get(settings.SESSION_COOKIE_NAME):
        return False
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(request.COOKIES[settings.SESSION_COOKIE_NAME])
    request.user = SimpleLazyObject(lambda: auth.get_user(request))  # type: ignore[assignment]
    OTPMiddleware(lambda _request: HttpResponse())(request)
    user = request.user
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.is_staff or user.is_superuser)
        and user.is_verified()  # type: ignore[attr-defined]
    )


def shows_details(request: HttpRequest) -> bool:
    return settings.DEBUG or _bearer_token_matches(request) or _is_verified_staff(request)


def _answer(body: dict[str, object], status: int) -> HttpResponse:
    response = JsonResponse(body, status=status)
    add_never_cache_headers(response)
    return response


def live(request: HttpRequest) -> HttpResponse:
    return _answer({"status": "ok"}, 200)


def ready(request: HttpRequest) -> HttpResponse:
    results = run_checks()
    healthy = all(result == "ok" for result in results.values())
    body: dict[str, object] = {"status": "ok" if healthy else "unavailable"}
    if shows_details(request):
        body["checks"] = results
    return _answer(body, 200 if healthy else 503)


VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {LIVE_PATH: live, READY_PATH: ready}


class HealthMiddleware:
    """Answers the health paths before the portal's middleware sees them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = VIEWS.get(request.path_info)
        if view is None:
            return self.get_response(request)
        request.portal_route = request.path_info.lstrip("/")  # type: ignore[attr-defined]  # the request log's route
        if request.method not in {"GET", "HEAD"}:
            response: HttpResponse = HttpResponseNotAllowed(["GET", "HEAD"])
            add_never_cache_headers(response)
            return response
        return view(request)
