from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation


class UserPreferencesMiddleware:
    """Applies a signed-in user's language and time zone to the request.

    Runs after authentication. Without a saved language, Django's LocaleMiddleware
    has already chosen from the browser's Accept-Language.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.languages = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if user.language in self.languages:
                translation.activate(user.language)
                request.LANGUAGE_CODE = user.language
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


class SessionActivityMiddleware:
    """Keeps allauth's per-user session list (usersessions) up to date.

    allauth's own tracking writes the session row on every request; this does it at
    most once per ``SESSION_ACTIVITY_INTERVAL`` seconds (default 60), remembering
    the last time in the session, so a page view costs no extra query.
    """

    KEY = "_portal_activity_at"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.interval = settings.SESSION_ACTIVITY_INTERVAL

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if (
            user is not None
            and user.is_authenticated
            and session is not None
            and session.session_key
        ):
            now = time.time()
            if now - float(session.get(self.KEY, 0)) >= self.interval:
                from allauth.usersessions.models import UserSession

                from accounts.services.sessions import session_mark_impersonated

                UserSession.objects.create_from_request(request)
                history = session.get("hijack_history") or []
                if history:
                    # Opened by staff impersonating the user: not one of the user's devices.
                    session_mark_impersonated(
                        session_key=session.session_key, impersonator_id=int(history[-1])
                    )
                session[self.KEY] = now
        return response
