"""One JSON shape for every error the API answers:
``{"code": "...", "message": "...", "details": {...}}``.

Codes are stable (clients switch on them); messages are in the request's language
(``Accept-Language``). Flows raise ``FlowError`` subclasses, the policy raises
``PolicyDenied`` / ``FieldOff``; each is turned into its status and code here, in
one place. ``ApiErrorShapeMiddleware`` gives the same shape to the errors Django
answers before or after the API (unknown URL, wrong method, unreadable request).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from accounts.flows.errors import FlowError, ReauthenticationRequired
from accounts.policy import FieldOff, PolicyDenied
from accounts.unavailable import UNAVAILABLE_ERRORS, unavailable_response

API_PREFIX = "/api/"


def error_response(
    status: int,
    code: str,
    message: object,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    response = JsonResponse(
        {"code": code, "message": str(message), "details": details or {}}, status=status
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def status_message(status: int) -> tuple[str, str]:
    if status == 401:
        return "unauthenticated", _("Sign in or send a valid access token.")
    if status == 403:
        return "forbidden", _("You are not allowed to do this.")
    if status == 404:
        return "not_found", _("Nothing was found at this address.")
    if status == 405:
        return "method_not_allowed", _("This address does not accept this method.")
    if status == 413:
        return "too_large", _("The request is too large.")
    if status == 415:
        return "unsupported_media_type", _("Send JSON (or a form for file uploads).")
    if status == 429:
        return "rate_limited", _("Too many attempts. Please wait a moment and try again.")
    if status == 503:
        return "service_unavailable", _(
            "The service is briefly unavailable. Please try again in a moment."
        )
    if status >= 500:
        return "server_error", _("Something went wrong on our side. Nothing was changed.")
    return "bad_request", _("The request could not be read.")


def unauthenticated() -> JsonResponse:
    code, message = status_message(401)
    return error_response(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="api"'})


# --- Validation messages -------------------------------------------------------
# pydantic's own messages are English only; the API's follow the request's language.


def _pydantic_message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return _("This field is required.")
    if kind in {"string_too_long", "too_long"}:
        return _("Use at most %(max)s characters.") % {"max": ctx.get("max_length", "?")}
    if kind in {"string_too_short", "too_short"}:
        return _("Use at least %(min)s characters.") % {"min": ctx.get("min_length", "?")}
    if kind == "extra_forbidden":
        return _("This field is not accepted here.")
    if kind in {"less_than_equal", "less_than"}:
        return _("Use a value up to %(max)s.") % {"max": ctx.get("le", ctx.get("lt", "?"))}
    if kind in {"greater_than_equal", "greater_than"}:
        return _("Use a value from %(min)s.") % {"min": ctx.get("ge", ctx.get("gt", "?"))}
    if kind in {"literal_error", "enum"}:
        return _("Choose one of: %(choices)s.") % {"choices": ctx.get("expected", "")}
    if kind.startswith("datetime") or kind.startswith("date"):
        return _("Enter a date and time such as 2026-12-31T23:59:00Z.")
    if kind == "string_pattern_mismatch":
        return _("This value does not have the expected form.")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return _("This value has the wrong type.")
    return _("This value is not valid.")


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "payload", "name") -> "name"; ("query", "cursor") -> "cursor"
    parts = [str(p) for p in loc if p not in {"body", "query", "path", "header", "form", "file"}]
    if len(parts) > 1 and parts[0] in {"payload", "data"}:
        parts = parts[1:]
    return ".".join(parts) or "__all__"


def validation_details(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    details: dict[str, list[str]] = {}
    for error in errors:
        details.setdefault(_field_name(error.get("loc", ())), []).append(_pydantic_message(error))
    return details


def _validation(details: dict[str, list[str]]) -> JsonResponse:
    return error_response(
        422, "validation_error", _("Some values are not valid. Nothing was changed."), details
    )


def _django_validation(exc: DjangoValidationError) -> JsonResponse:
    if hasattr(exc, "error_dict"):
        details = {name: [str(m) for m in messages] for name, messages in exc.message_dict.items()}
    else:
        details = {"__all__": [str(m) for m in exc.messages]}
    return _validation(details)


# --- Exception handlers ----------------------------------------------------------------


def _flow_error(request: HttpRequest, exc: FlowError) -> HttpResponse:
    if isinstance(exc, ReauthenticationRequired):
        # A verification was sent but is expired or not this user's: say so.
        problem = getattr(request, "api_verification_problem", None)
        if problem is not None:
            exc = problem
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if exc.status == 429 and retry_after:
        headers["Retry-After"] = str(retry_after)
    message = exc.message or status_message(exc.status)[1]
    return error_response(exc.status, exc.code, message, headers=headers)


def _permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    code = getattr(exc, "code", "forbidden") if isinstance(exc, PolicyDenied) else "forbidden"
    message = str(exc) or status_message(403)[1]
    return error_response(403, code, message)


def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    if isinstance(exc, FieldOff):
        return error_response(404, FieldOff.code, _("This setting is not available on this site."))
    return error_response(404, *status_message(404))


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    status = exc.status_code
    code, message = status_message(status)
    if status == 403 and "csrf" in str(exc).lower():
        code, message = "csrf_failed", _("The CSRF token is missing or wrong. Reload and retry.")
    return error_response(status, code, message)


def _database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Ninja answers an exception it has no handler for with a traceback (debug) or
    # lets Django answer 500: a database that cannot be reached is a 503 instead.
    return unavailable_response(request)


def _ninja_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    return _validation(validation_details(list(exc.errors)))


def install(api: NinjaAPI) -> None:
    handlers: list[tuple[type[Exception], Callable[[HttpRequest, Any], HttpResponse]]] = [
        (FlowError, _flow_error),
        (PermissionDenied, _permission_denied),
        (Http404, _not_found),
        (HttpError, _http_error),
        (NinjaValidationError, _ninja_validation),
        (DjangoValidationError, lambda request, exc: _django_validation(exc)),
        (AuthenticationError, lambda request, exc: unauthenticated()),
        *((error, _database_unavailable) for error in UNAVAILABLE_ERRORS),
    ]
    for exc_class, handler in handlers:
        api.add_exception_handler(exc_class, handler)


class ApiErrorShapeMiddleware(MiddlewareMixin):
    """Errors under ``/api/`` that the API itself did not answer (an unknown
    address, a wrong method, a request Django could not read, a server error) get
    the API's JSON shape instead of an HTML page."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if (
            response.status_code < 400
            or not request.path_info.startswith(API_PREFIX)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        code, message = status_message(response.status_code)
        shaped = error_response(response.status_code, code, message)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                shaped[header] = response[header]
        return shaped
