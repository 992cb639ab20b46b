"""Re-authentication for sensitive changes.

allauth records each (re-)authentication in the session and offers the pages to
re-authenticate (password, and later a second factor). Its own check treats a
user with neither a password nor a second factor as "already re-authenticated";
the portal never does: such a user proves it with a code sent to their verified
primary email (``accounts.views.reauth``). This module is the one check used by
our views (the decorator) and by the libraries' sensitive URLs (the middleware).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from allauth.account.adapter import get_adapter
from allauth.account.internal.flows import reauthentication as allauth_reauth
from allauth.account.internal.flows.login import get_authentication_records, record_authentication
from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django_htmx.http import HttpResponseClientRedirect

EMAIL_CODE_METHOD = "email_code"


def window_seconds() -> int:
    return int(settings.ACCOUNT_REAUTHENTICATION_TIMEOUT)


def recently_reauthenticated(request: HttpRequest) -> bool:
    user = request.user
    if not user.is_authenticated:
        return False
    records = [r for r in get_authentication_records(request, user) if r.get("reauthenticated")]
    if not records:
        return False
    return time.time() - float(records[-1]["at"]) < window_seconds()


def record_email_code_reauthentication(request: HttpRequest) -> None:
    record_authentication(
        request,
        request.user,
        method=EMAIL_CODE_METHOD,
        reauthenticated=True,
    )


def has_password_or_factor(user: Any) -> bool:
    methods = get_adapter().get_reauthentication_methods(user)
    return any(m["id"] != EMAIL_CODE_METHOD for m in methods)


def safe_next(request: HttpRequest) -> str:
    """The ``next`` parameter when it points into this site, else ''."""
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


def _return_path(request: HttpRequest) -> str:
    """For htmx, the page the user is on (htmx sends it); else this request's path."""
    current = request.headers.get("HX-Current-URL", "")
    if current and url_has_allowed_host_and_scheme(
        current, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        parts = urlsplit(current)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.get_full_path()


def reauthentication_url(request: HttpRequest) -> str:
    methods = get_adapter().get_reauthentication_methods(request.user)
    return methods[0]["url"] if methods else reverse("account_login")


def reauthentication_response(request: HttpRequest) -> HttpResponse:
    """Send the user to re-authenticate, then back. A plain POST is kept and
    replayed after re-authenticating (allauth's suspend/resume); htmx gets a
    client redirect instead of a sign-in form swapped into a card."""
    url = reauthentication_url(request)
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(
            f"{url}?{urlencode({REDIRECT_FIELD_NAME: _return_path(request)})}"
        )
    return allauth_reauth.suspend_request(request, url)


def reauthentication_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not recently_reauthenticated(request):
            return reauthentication_response(request)
        return view(request, *args, **kwargs)

    return wrapper
