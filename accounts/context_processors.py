from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts.navigation import settings_sections
from accounts.policy import get_policy


def portal(request: HttpRequest) -> dict[str, Any]:
    """Site name and, for a signed-in user, the settings navigation (built lazily)."""
    return {
        "portal_name": settings.PORTAL_NAME,
        "settings_sections": lambda: settings_sections(request),
        "policy": lambda: get_policy(request),
    }
