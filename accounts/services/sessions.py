"""Ending sessions. allauth's usersessions knows each user's sessions."""

from __future__ import annotations

from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.sessions.models import Session

from accounts.actor import Actor
from accounts.models import User
from accounts.services.audit import Action, audit_record


def sessions_end_others(*, user: User, keep_session_key: str) -> int:
    """Ends every session of ``user`` but ``keep_session_key`` (the one acting)."""
    return _end(
        list(
            UserSession.objects.filter(user=user)
            .exclude(session_key=keep_session_key)
            .only("pk", "session_key")
        )
    )


def session_rekeyed(*, old_key: str, new_key: str) -> None:
    """A session kept through a password change got a new key: it stays in the
    user's list (same device, same start) under that key."""
    if old_key and new_key and old_key != new_key:
        UserSession.objects.filter(session_key=old_key).update(session_key=new_key)


DB_SESSIONS = "django.contrib.sessions.backends.db"


def sessions_end_all(*, user: User) -> int:
    """Ends every session of ``user``."""
    return _end(list(UserSession.objects.filter(user=user).only("pk", "session_key")))


def _end(sessions: list[UserSession]) -> int:
    """Ends ``sessions``: with the database session store, in two queries whatever
    their number; else one by one through allauth (``end()``, which deletes from the
    configured store)."""
    if not sessions:
        return 0
    if settings.SESSION_ENGINE == DB_SESSIONS:
        Session.objects.filter(session_key__in=[s.session_key for s in sessions]).delete()
        UserSession.objects.filter(pk__in=[s.pk for s in sessions]).delete()
    else:
        for session in sessions:
            session.end()
    return len(sessions)


def session_end(*, ctx: Actor | None, user: User, session: UserSession) -> None:
    """The user ends one of their sessions: it is dead at once."""
    info = {"ip": session.ip, "user_agent": session.user_agent[:200]}
    session.end()
    audit_record(ctx=ctx, action=Action.SESSION_ENDED, subject=user, data=info)


def sessions_end_others_by_user(*, ctx: Actor, user: User) -> int:
    """The user's "end every other session": their own devices only (sessions opened
    by staff impersonating them are not theirs to see or end); the session acting
    (``ctx.session_key``) stays."""
    own = [
        session
        for session in UserSession.objects.filter(user=user).exclude(session_key=ctx.session_key)
        if not (session.data or {}).get("impersonated_by")
    ]
    count = _end(own)
    if count:
        audit_record(ctx=ctx, action=Action.SESSIONS_ENDED, subject=user, data={"count": count})
    return count


def signed_in_record(*, ctx: Actor | None, user: User) -> None:
    audit_record(ctx=ctx, action=Action.SIGNED_IN, subject=user, actor=user)


def signed_out_record(*, ctx: Actor | None, user: User) -> None:
    audit_record(ctx=ctx, action=Action.SIGNED_OUT, subject=user, actor=user)


def session_mark_impersonated(*, session_key: str, impersonator_id: int) -> None:
    """A session opened by staff impersonating the user is not one of the user's
    devices: the user neither sees nor ends it."""
    UserSession.objects.filter(session_key=session_key).update(
        data={"impersonated_by": impersonator_id}
    )
