from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import LazyObject, empty

from accounts.navigation import settings_nav_html, settings_sections
from accounts.policy import get_policy


def _resolved(user: Any) -> Any:
    """The user behind ``request.user``'s lazy wrappers (authentication, django-otp
    and django-hijack each add one), evaluated as any of them would be. A template
    looks a signed-in page's user up a dozen times, each lookup through the three
    wrappers; the middleware has evaluated it already (gates, preferences)."""
    while isinstance(user, LazyObject):
        if user._wrapped is empty:
            user._setup()
        user = user._wrapped
    return user


def portal(request: HttpRequest) -> dict[str, Any]:
    """Site name and, for a signed-in user, the settings navigation (built lazily,
    once: the template engine calls a callable each time a variable names it).
    ``user`` replaces the one of Django's ``auth`` processor (listed before this
    one) with the same user, unwrapped."""
    context = {
        "portal_name": settings.PORTAL_NAME,
        "settings_sections": cache(lambda: settings_sections(request)),
        "settings_nav": cache(lambda: settings_nav_html(request)),
        "policy": cache(lambda: get_policy(request)),
    }
    if hasattr(request, "user"):
        context["user"] = _resolved(request.user)
    return context
