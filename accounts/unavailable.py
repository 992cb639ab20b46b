"""A database that cannot be reached answers 503 ("try again in a moment"), never a
server error page with a traceback.

When PostgreSQL restarts or cannot be reached, or SQLite stays locked past its busy
timeout, Django raises ``OperationalError`` or ``InterfaceError`` (the pool's
``PoolTimeout`` arrives wrapped in ``OperationalError``). Where it is raised
decides who sees it:

- in a view, or while a ``TemplateResponse`` renders (lazy querysets):
  ``process_exception`` below answers 503 at once;
- in another middleware (the session, the signed-in user, the gates, the session
  activity) or while the 404 / 403 page renders: Django turns the exception into a
  500 at that middleware's own layer (``convert_exception_to_response`` wraps each
  one), so no outer ``try`` ever sees it. It does send ``got_request_exception``
  first: the receiver below marks the request (and empties its session, so the
  other middlewares do not wait for the database again), and the middleware
  replaces the response on its way out.

The middleware therefore sits before every middleware that may read the database
(the session's), and after those that only add headers (security, CSP), which
then add theirs to the 503 too.

The page itself is rendered without the request's context processors: they would
read the session and the user from the database that just failed. The app recovers
by itself: the pool checks each connection before handing it out and reconnects in
the background.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.cache import add_never_cache_headers, patch_vary_headers

logger = logging.getLogger(__name__)

# Seconds a client is asked to wait before trying again.
RETRY_AFTER_SECONDS = 5

_MARK = "_database_unavailable"

try:  # psycopg's pool (PostgreSQL); Django normally wraps its timeout already.
    from psycopg_pool import PoolTimeout
except ImportError:  # pragma: no cover - SQLite-only installs
    UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
else:
    UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeout)


def is_database_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, UNAVAILABLE_ERRORS)


def _csrf_token(request: HttpRequest) -> str:
    """The token for the page's forms (the language), when the browser's CSRF cookie
    was read before the failure; none otherwise (no cookie could be set with it)."""
    if settings.CSRF_COOKIE_NAME in request.COOKIES and "CSRF_COOKIE" in request.META:
        return get_token(request)
    return ""


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503: the API's JSON shape under /api/, else the site's page."""
    from accounts.api.errors import API_PREFIX, error_response, status_message

    language = translation.get_language_from_request(request)
    with translation.override(language):
        if request.path_info.startswith(API_PREFIX):
            response: HttpResponse = error_response(503, *status_message(503))
        else:
            # No request: its context processors would read the session and the user.
            context = {"portal_name": settings.PORTAL_NAME, "csrf_token": _csrf_token(request)}
            html = render_to_string("503.html", context)
            response = HttpResponse(html, status=503)
        response["Content-Language"] = language
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["X-Frame-Options"] = settings.X_FRAME_OPTIONS
    add_never_cache_headers(response)
    patch_vary_headers(response, ("Accept-Language", "Cookie"))
    return response


_ANSWERED = "_database_unavailable_answered"


def _answer(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The 503, and its one log line."""
    from portal.logs import route_of  # the route, never the path (it may carry a key)

    logger.warning(
        "Database unavailable, answered 503 to %s %s: %s", request.method, route_of(request), exc
    )
    setattr(request, _ANSWERED, True)
    return unavailable_response(request)


class AnsweredFilter(logging.Filter):
    """On ``django.request``: leaves out Django's own lines for a request answered
    503 here, which the warning above already tells: its "Internal Server Error"
    (with the traceback of the failed connection) where a middleware raised, and its
    "Service Unavailable" with the request's path (which may carry a key)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and is_database_unavailable(record.exc_info[1]):
            return False
        request = getattr(record, "request", None)
        return not (
            getattr(record, "status_code", None) == 503 and getattr(request, _ANSWERED, False)
        )


def _mark_request(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """``got_request_exception`` is sent inside the ``except`` block that caught it."""
    exc = sys.exception()
    if request is None or not is_database_unavailable(exc):
        return
    setattr(request, _MARK, exc)
    if hasattr(request, "session"):
        # The outer middlewares go on with the 500 and read the session again (the
        # signed-in user): each read would wait for the pool's timeout once more.
        # An empty session reads nothing. Their response is replaced anyway, cookies
        # included, so the visitor's session is left as it is.
        store = import_module(settings.SESSION_ENGINE).SessionStore
        request.session = store(None)


got_request_exception.connect(_mark_request, dispatch_uid="accounts.unavailable")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        exc = getattr(request, _MARK, None)
        if exc is not None:  # whatever the middlewares made of the 500 since
            return _answer(request, exc)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None
        return _answer(request, exception)
