"""Ending sessions. allauth's usersessions knows each user's sessions."""

from __future__ import annotations

from allauth.usersessions.models import UserSession
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest

from accounts.models import User


def _current_key(request: HttpRequest | None) -> str | None:
    session: SessionBase | None = getattr(request, "session", None)
    return session.session_key if session is not None else None


def sessions_end_others(*, user: User, request: HttpRequest | None) -> int:
    """Ends every session of ``user`` but the one making the request."""
    current = _current_key(request)
    ended = 0
    for session in UserSession.objects.filter(user=user).exclude(session_key=current or ""):
        session.end()
        ended += 1
    return ended


def sessions_end_all(*, user: User) -> int:
    ended = 0
    for session in UserSession.objects.filter(user=user):
        session.end()
        ended += 1
    return ended
