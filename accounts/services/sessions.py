"""Ending sessions. allauth's usersessions knows each user's sessions."""

from __future__ import annotations

from allauth.usersessions.models import UserSession
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest

from accounts.models import User


def _current_key(request: HttpRequest | None) -> str | None:
    session: SessionBase | None = getattr(request, "session", None)
    return session.session_key if session is not None else None


def sessions_end_others(*, user: User, keep_session_key: str) -> int:
    """Ends every session of ``user`` but ``keep_session_key`` (the one acting)."""
    ended = 0
    for session in UserSession.objects.filter(user=user).exclude(session_key=keep_session_key):
        session.end()
        ended += 1
    return ended


def sessions_end_all(*, user: User) -> int:
    ended = 0
    for session in UserSession.objects.filter(user=user):
        session.end()
        ended += 1
    return ended


def session_end(*, user: User, session: UserSession, request: HttpRequest | None) -> None:
    """The user ends one of their sessions: it is dead at once."""
    from accounts.services.audit import Action, audit_record

    info = {"ip": session.ip, "user_agent": session.user_agent[:200]}
    session.end()
    audit_record(action=Action.SESSION_ENDED, subject=user, request=request, data=info)


def sessions_end_others_by_user(*, user: User, request: HttpRequest) -> int:
    """The user's "end every other session": their own devices only (sessions opened
    by staff impersonating them are not theirs to see or end)."""
    from accounts.services.audit import Action, audit_record

    current = _current_key(request)
    count = 0
    for session in UserSession.objects.filter(user=user).exclude(session_key=current or ""):
        if (session.data or {}).get("impersonated_by"):
            continue
        session.end()
        count += 1
    if count:
        audit_record(
            action=Action.SESSIONS_ENDED, subject=user, request=request, data={"count": count}
        )
    return count
