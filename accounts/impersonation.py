"""Impersonation (django-hijack) under guard rails.

- Who: staff with ``accounts.impersonate_user``, in a session verified by a second
  factor, on an active account that is neither staff nor superuser; a reason is
  required (``accounts.views.impersonation``).
- While it lasts: a banner on every page; the sensitive settings refuse to act;
  it ends by itself after ``IMPERSONATION_MAX_SECONDS`` (30 minutes).
- Start and end are audit events naming both people (``accounts.signals``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model, login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from hijack import signals as hijack_signals

STARTED_KEY = "portal_impersonation_started"
REASON_KEY = "portal_impersonation_reason"

# The sensitive settings refuse to act while impersonating (``accounts.gates``).
REFUSED = _(
    "You are viewing this account as its owner: this sensitive setting is not "
    "available while impersonating. Nothing was changed."
)


def max_seconds() -> int:
    return int(getattr(settings, "IMPERSONATION_MAX_SECONDS", 30 * 60))


def can_impersonate(*, hijacker: Any, hijacked: Any) -> bool:
    """django-hijack's permission check (HIJACK_PERMISSION_CHECK)."""
    if hijacked is None or hijacker is None or hijacker.pk == hijacked.pk:
        return False
    return bool(
        hijacker.is_active
        and hijacker.is_staff
        and hijacker.has_perm("accounts.impersonate_user")
        and hijacked.is_active
        and getattr(hijacked, "state", "active") == "active"
        and not hijacked.is_staff
        and not hijacked.is_superuser
    )


def is_impersonating(request: HttpRequest) -> bool:
    return bool(getattr(request, "session", None) and request.session.get("hijack_history"))


def impersonator_pk(request: HttpRequest) -> int | None:
    history = request.session.get("hijack_history") or []
    return int(history[-1]) if history else None


def release(request: HttpRequest, *, expired: bool = False) -> Any:
    """Ends the impersonation as django-hijack's release view does (back to the
    staff member's own identity, which must verify its second factor again)."""
    history = list(request.session.get("hijack_history", []))
    if not history:
        return None
    hijacked = request.user
    reason = request.session.get(REASON_KEY, "")
    hijacker = get_user_model().objects.get(pk=history.pop())
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


class ImpersonationMiddleware:
    """Expiry (the refusal of sensitive settings is ``accounts.gates.GateMiddleware``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if not is_impersonating(request):
            return None
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
