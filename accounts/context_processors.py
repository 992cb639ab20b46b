from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts.navigation import settings_nav_html, settings_sections
from accounts.policy import get_policy


def portal(request: HttpRequest) -> dict[str, Any]:
    """Site name and, for a signed-in user, the settings navigation (built lazily,
    once: the template engine calls a callable each time a variable names it)."""
    return {
        "portal_name": settings.PORTAL_NAME,
        "settings_sections": cache(lambda: settings_sections(request)),
        "settings_nav": cache(lambda: settings_nav_html(request)),
        "policy": cache(lambda: get_policy(request)),
    }
