"""The web surface's side of the flows: an ``Actor`` from a request, and the one
place that turns a flow's refusal into a page (``FlowErrorMiddleware``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

from accounts.actor import Actor, Surface
from accounts.flows.errors import AccessDenied, RateLimited, ReauthenticationRequired


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as allauth reads it (its proxy settings apply)."""
    from allauth.account.adapter import get_adapter

    try:
        return get_adapter().get_client_ip(request) or None
    except Exception:  # noqa: BLE001 - a missing or odd address must not block the change
        return request.META.get("REMOTE_ADDR") or None


def _reauthenticated_at(request: HttpRequest) -> float | None:
    if not request.user.is_authenticated or not hasattr(request, "session"):
        return None
    from allauth.account.internal.flows.login import get_authentication_records

    records = [
        r for r in get_authentication_records(request, request.user) if r.get("reauthenticated")
    ]
    return float(records[-1]["at"]) if records else None


def actor_from_request(
    request: HttpRequest, *, surface: Surface = "web", subject: Any = None
) -> Actor:
    """Who acts in this request. The impersonating staff member comes from
    django-hijack's session history; the re-authentication time from allauth's
    authentication records."""
    session = getattr(request, "session", None)
    history = (session.get("hijack_history") or []) if session is not None else []
    user = request.user if request.user.is_authenticated else None
    return Actor(
        user=user,
        subject=subject,
        impersonator_id=int(history[-1]) if history else None,
        ip=client_ip(request),
        user_agent=request.headers.get("User-Agent", "")[:300],
        surface=surface,
        language=getattr(request, "LANGUAGE_CODE", "") or "",
        session_key=(session.session_key or "") if session is not None else "",
        reauthenticated_at=_reauthenticated_at(request),
    )


def ctx_for(request: HttpRequest) -> Actor:
    """The web actor of the signed-in user's own settings. Built afresh on each
    call: allauth replays a request parked for re-authentication within the
    re-authentication request itself, and the replay must see the new proof."""
    return actor_from_request(request)


def session_keep(request: HttpRequest, user: Any) -> None:
    """After the user changed their password in this request, this session stays
    signed in (Django's session hash follows the new password; the key changes)
    and stays in the user's session list, as allauth's password pages do."""
    from django.contrib.auth import update_session_auth_hash

    from accounts.services.sessions import session_rekeyed

    old_key = request.session.session_key or ""
    update_session_auth_hash(request, user)
    session_rekeyed(old_key=old_key, new_key=request.session.session_key or "")


def rate_limited_response(request: HttpRequest, error: RateLimited) -> HttpResponse:
    response = render(request, "429.html", status=429)
    if error.retry_after:
        response["Retry-After"] = str(error.retry_after)
    return response


class FlowErrorMiddleware(MiddlewareMixin):
    """Turns a flow's refusal into the web answer: 404 for someone else's object,
    403 for staff without the right, 429 with the limit page, and the
    re-authentication page for a change that needs a fresh proof."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, AccessDenied):
            if exception.status == 404:
                raise Http404 from exception
            raise PermissionDenied(exception.message) from exception
        if isinstance(exception, RateLimited):
            return rate_limited_response(request, exception)
        if isinstance(exception, ReauthenticationRequired):
            from accounts.reauth import reauthentication_response

            return reauthentication_response(request)
        return None
