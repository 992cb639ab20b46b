from __future__ import annotations

import codecs
import time
import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.cache import add_never_cache_headers
from django.utils.deprecation import MiddlewareMixin
from django.utils.functional import LazyObject, empty

FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# Codec names (as codecs.lookup spells them) whose bytes read the same as UTF-8.
UTF8_COMPATIBLE_CODECS = frozenset({"utf-8", "ascii"})


class FormCharsetMiddleware(MiddlewareMixin):
    """Answers 400 with the site's error page to a form posted in a charset other
    than UTF-8 (``Content-Type: application/x-www-form-urlencoded; charset=latin-1``)
    or in a charset Python does not know (``charset=foo``).

    Works around a Django behaviour (reproduced on a bare project): reading
    ``request.POST`` of a urlencoded body that declares any charset but exactly
    "utf-8" raises ``BadRequest``; the 400 handler and then the 500 handler are
    both wrapped in ``requires_csrf_token``, whose CSRF check reads ``request.POST``
    again and raises again, so the client gets an empty 500. An unknown charset
    (``LookupError`` in ``codecs.lookup``) is silently read as UTF-8 instead; a
    multipart form is decoded with the declared charset. Browsers send UTF-8 forms
    without a charset, so refusing the others costs nobody anything; the spellings
    of UTF-8 and ASCII (``utf8``, ``US-ASCII``) are read as UTF-8.

    Also answers 400 to a request the handler could only build without its query
    string and body (``accounts.requests``).

    Placed before ``CsrfViewMiddleware``, the first reader of ``request.POST``.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if getattr(request, "malformed", False):  # ``accounts.requests``
            return render(request, "400.html", status=400)
        if request.content_type not in FORM_CONTENT_TYPES:
            return None
        charset = (request.content_params or {}).get("charset")
        if charset is None:
            return None
        try:
            codec = codecs.lookup(charset).name
        except LookupError:
            codec = ""
        if codec in UTF8_COMPATIBLE_CODECS:
            request.encoding = "utf-8"
            return None
        return render(request, "400.html", status=400)


class PrivatePagesMiddleware(MiddlewareMixin):
    """Every answer to a signed-in user (settings, back-office, API) is
    ``Cache-Control: no-store`` (with Django's other never-cache headers): the pages
    show a TOTP secret, new backup codes, personal data. Anonymous pages keep their
    own headers; static and media files keep theirs (they hold nothing private:
    avatars have unguessable names)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)
        self.file_prefixes = tuple(
            prefix for prefix in (settings.STATIC_URL, settings.MEDIA_URL) if prefix
        )

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(self.file_prefixes)
        ):
            add_never_cache_headers(response)
        return response


class ResolvedUserMiddleware:
    """Replaces ``request.user`` with the user behind its lazy wrappers.

    Authentication, django-otp and django-hijack each wrap the user in a lazy object
    that evaluates the one before it. After them, every attribute read goes through
    all three: a settings page reads the user some hundred times (each of its
    queries filtered by user, its templates), which cost it as much as one more
    query. The user is evaluated here as the first reader would have (the next
    middleware reads it on every request anyway); django-otp's and django-hijack's
    attributes (``is_verified``, ``otp_device``, ``is_hijacked``) are on it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None:
            while isinstance(user, LazyObject):
                if user._wrapped is empty:
                    user._setup()
                user = user._wrapped
            request.user = user
        return self.get_response(request)


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
