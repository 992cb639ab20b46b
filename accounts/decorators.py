from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from allauth.account.adapter import get_adapter
from allauth.account.decorators import reauthentication_required as allauth_reauthentication
from allauth.core.exceptions import ReauthenticationRequired
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django_htmx.http import HttpResponseClientRedirect


def _htmx_return_path(request: HttpRequest) -> str:
    """The page the user is on (htmx sends it), for coming back after re-authenticating."""
    current = request.headers.get("HX-Current-URL", "")
    if current and url_has_allowed_host_and_scheme(
        current, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        parts = urlsplit(current)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.get_full_path()


def reauthentication_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """allauth's re-authentication gate. For an htmx request the browser is sent to
    the re-authentication page (a client redirect) rather than getting a sign-in form
    swapped into a card, and comes back to the page it was on."""
    gated = allauth_reauthentication(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not getattr(request, "htmx", False):
            return gated(request, *args, **kwargs)
        try:
            return gated(request, *args, **kwargs)
        except ReauthenticationRequired:
            methods = get_adapter().get_reauthentication_methods(request.user)
            url = methods[0]["url"] if methods else reverse("account_login")
            next_path = _htmx_return_path(request)
            return HttpResponseClientRedirect(
                f"{url}?{urlencode({REDIRECT_FIELD_NAME: next_path})}"
            )

    return wrapper
