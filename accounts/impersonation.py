"""Impersonation (django-hijack) under guard rails.

- Who: staff with ``accounts.impersonate_user``, in a session verified by a second
  factor, on an active account that is neither staff nor superuser; a reason is
  required (``accounts.views.impersonation``, ``accounts.flows.impersonation``).
- While it lasts: a banner on every page; the sensitive settings refuse to act;
  it ends by itself after ``IMPERSONATION_MAX_SECONDS`` (30 minutes by default).
- Start and end are audit events naming both people (``accounts.signals``).
- A staff member suspended, deleted or no longer staff ends their impersonations:
  their sessions are ended, and a request still carrying one is signed out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.deprecation import MiddlewareMixin
from hijack import signals as hijack_signals

from accounts.flows.errors import IMPERSONATION_REFUSED
from accounts.flows.impersonation import active_staff, impersonation_ended
from accounts.flows.impersonation import can_impersonate as can_impersonate

STARTED_KEY = "portal_impersonation_started"
REASON_KEY = "portal_impersonation_reason"

# The sensitive settings refuse to act while impersonating (``accounts.gates``).
REFUSED = IMPERSONATION_REFUSED


def max_seconds() -> int:
    return int(settings.IMPERSONATION_MAX_SECONDS)


def is_impersonating(request: HttpRequest) -> bool:
    return bool(getattr(request, "session", None) and request.session.get("hijack_history"))


def impersonator_pk(request: HttpRequest) -> int | None:
    history = request.session.get("hijack_history") or []
    return int(history[-1]) if history else None


def release(request: HttpRequest, *, expired: bool = False) -> Any:
    """Ends the impersonation as django-hijack's release view does (back to the
    staff member's own identity, which must verify its second factor again).
    Returns the impersonated user, or None when there was nothing to end or the
    staff member was gone (the session is then signed out)."""
    history = list(request.session.get("hijack_history", []))
    if not history:
        return None
    hijacked = request.user
    reason = request.session.get(REASON_KEY, "")
    hijacker = active_staff(history.pop())
    if hijacker is None:
        sign_out_orphan(request)
        return None
    backend = request.session.get(BACKEND_SESSION_KEY, settings.AUTHENTICATION_BACKENDS[0])
    with hijack_signals.no_update_last_login():
        login(request, hijacker, backend=backend)
    request.session["hijack_history"] = history
    request.portal_impersonation_expired = expired  # type: ignore[attr-defined]
    request.portal_impersonation_reason = reason  # type: ignore[attr-defined]
    hijack_signals.hijack_ended.send(
        sender=None, request=request, hijacker=hijacker, hijacked=hijacked
    )
    return hijacked


def sign_out_orphan(request: HttpRequest) -> HttpResponse:
    """An impersonation whose staff member is deleted, suspended or no longer staff:
    signed out (it may not fall back to them). Signing out records the end of the
    impersonation (``accounts.signals``), marked as the staff member being gone."""
    request.portal_impersonation_staff_gone = True  # type: ignore[attr-defined]
    staff_pk = impersonator_pk(request)
    user = request.user
    gone = staff_pk is None or not get_user_model().objects.filter(pk=staff_pk).exists()
    if user.is_authenticated and gone:
        # The staff member's row is gone: the events may not point at it. Record the
        # end here, and sign out as the user alone.
        from accounts.web import actor_from_request

        ctx = replace(actor_from_request(request), impersonator_id=None)
        impersonation_ended(
            ctx=ctx,
            user=user,
            staff_id=None,
            reason=request.session.get(REASON_KEY, ""),
            staff_gone=True,
        )
        request.session["hijack_history"] = []
    logout(request)
    return HttpResponseRedirect(reverse("account_login"))


class ImpersonationMiddleware(MiddlewareMixin):
    """Expiry (the refusal of sensitive settings is ``accounts.gates.GateMiddleware``)."""

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if not is_impersonating(request):
            return None
        if active_staff(impersonator_pk(request)) is None:
            return sign_out_orphan(request)
        started = float(request.session.get(STARTED_KEY, 0))
        if time.time() - started > max_seconds():
            hijacked = release(request, expired=True)
            target = (
                reverse("admin:accounts_user_change", args=[hijacked.pk])
                if hijacked is not None
                else reverse("admin:index")
            )
            return HttpResponseRedirect(target)
        return None
