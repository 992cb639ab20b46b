"""Structured logs: a request id on every record, one line per request
(``portal.request``) and one per security event (``portal.security``).

- The request id comes from an incoming ``X-Request-ID`` header when it is a short
  safe token, else it is made here; it is sent back as ``X-Request-ID``, put on every
  log record written during the request (``RequestIdFilter`` reads a context
  variable), and travels with the tasks the request schedules (a ``request_id``
  task argument, bound again while the worker runs the task).
- The request line names the URL *route* and the view, never the path or the query
  string: a path can carry a password-reset key or a confirmation key.
- Records that carry a request (Django's "Not Found: /path" warnings) are written
  with the route instead of the path, and without the request object.
"""

from __future__ import annotations

import contextvars
import copy
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{8,64}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("portal_request_id", default="")

request_logger = logging.getLogger("portal.request")
security_logger = logging.getLogger("portal.security")


def safe_request_id(value: object) -> str:
    """``value`` when it is a short token of letters, digits and hyphens, else ''."""
    if isinstance(value, str) and _SAFE_REQUEST_ID.fullmatch(value):
        return value
    return ""


def current_request_id() -> str:
    """The id of the request (or task) being handled, '' outside of one."""
    return _request_id.get()


@contextmanager
def request_id_bound(request_id: str) -> Iterator[None]:
    """Log records written inside carry ``request_id``."""
    token = _request_id.set(safe_request_id(request_id))
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (on a handler: records of every logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = _request_id.get()
        return True


# --- Records that carry a request --------------------------------------------------------


def route_of(request: HttpRequest) -> str:
    """The URL pattern the request matched (``settings/tokens/<int:pk>/revoke/``), or
    ``<unresolved>``: never the path itself."""
    answered_early = getattr(request, "portal_route", None)
    if answered_early:
        return str(answered_early)
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unresolved>"
    return str(match.route or match.view_name or "<unnamed>")


def _without_request(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` whose message names the route instead of the path and
    that no longer carries the request (its text shows the path and query string)."""
    request = getattr(record, "request", None)
    if not isinstance(request, HttpRequest):
        return record
    clean = copy.copy(record)
    message = record.getMessage()
    route = route_of(request)
    for raw in (request.get_full_path(), request.path, request.path_info):
        if raw and raw != "/":
            message = message.replace(raw, route)
    clean.msg, clean.args = message, None
    delattr(clean, "request")
    return clean


class PortalJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, one JSON object a line, with records that
    carry a request made safe first."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(_without_request(record))


class PortalTextFormatter(logging.Formatter):
    """The text format (development), with the same care as the JSON one."""

    def format(self, record: logging.LogRecord) -> str:
        record = _without_request(record)
        if not hasattr(record, "request_id"):
            record.request_id = ""
        return super().format(record)


def json_formatter() -> PortalJsonFormatter:
    return PortalJsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


# --- The request line ------------------------------------------------------------------------


def _user_id(request: HttpRequest) -> int | None:
    """The signed-in user's id, read only when the request has already loaded the
    user (a request that never looked at it costs no session or database read)."""
    user: Any = request.__dict__.get("user")
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is empty:
        return None
    if getattr(wrapped, "is_authenticated", False):
        return getattr(wrapped, "pk", None)
    return None


class RequestLogMiddleware:
    """Gives each request its id (context variable, ``X-Request-ID`` on the
    response) and writes one line when it is answered."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = safe_request_id(request.headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.perf_counter()
        # Not reset on the way out: Django logs a refused request ("Not Found: ...")
        # after the middlewares; ``request_finished`` forgets it.
        _request_id.set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        if request_logger.isEnabledFor(logging.INFO):
            self._log(request, response, started)
        return response

    def _log(self, request: HttpRequest, response: HttpResponse, started: float) -> None:
        from accounts.web import client_ip

        method = request.method if request.method in _METHODS else "OTHER"
        route = route_of(request)
        match = getattr(request, "resolver_match", None)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        request_logger.info(
            "%s %s %s %sms",
            method,
            route,
            response.status_code,
            duration_ms,
            extra={
                "method": method,
                "route": route,
                "view": (match.view_name if match is not None else "") or "",
                "status": response.status_code,
                "duration_ms": duration_ms,
                "user_id": _user_id(request),
                "ip": client_ip(request),
            },
        )


def _forget_request_id(**kwargs: Any) -> None:
    _request_id.set("")


request_finished.connect(_forget_request_id, dispatch_uid="portal.logs.forget_request_id")


# --- Security events ----------------------------------------------------------------------


def security_event_log(
    *,
    event: str,
    actor_id: int | None,
    subject_id: int | None,
    impersonator_id: int | None,
    surface: str,
    ip: str | None,
) -> None:
    """One line for an audit event. Never its free-form data: it holds addresses,
    numbers and names."""
    security_logger.info(
        "security event %s",
        event,
        extra={
            "event": event,
            "actor_id": actor_id,
            "subject_id": subject_id,
            "impersonator_id": impersonator_id,
            "surface": surface,
            "ip": ip,
        },
    )


# --- Tasks ---------------------------------------------------------------------------------

# Task result id -> the token that restores the context when the task is over.
_task_tokens: dict[str, contextvars.Token[str]] = {}


def task_started_bind(task_result: Any) -> None:
    """The worker starts a task: its log records carry the request id it was
    scheduled with (its ``request_id`` argument)."""
    request_id = safe_request_id((getattr(task_result, "kwargs", None) or {}).get("request_id"))
    if request_id:
        _task_tokens[str(task_result.id)] = _request_id.set(request_id)


def task_finished_unbind(task_result: Any) -> None:
    token = _task_tokens.pop(str(getattr(task_result, "id", "")), None)
    if token is None:
        return
    try:
        _request_id.reset(token)
    except ValueError:  # set in another context: leave nothing behind in this one
        _request_id.set("")
