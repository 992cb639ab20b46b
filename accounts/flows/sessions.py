"""Sessions: the user ends one of their sessions or every other one; signing in
and out are recorded."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.access import access_own_session
from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows.errors import FlowError
from accounts.metrics import sign_in_counted
from accounts.models import User
from accounts.services import sessions as sessions_service


class CurrentSession(FlowError):
    """The session acting cannot end itself this way: signing out does."""

    code = "session.current"
    status = 409

    def __init__(self) -> None:
        super().__init__(_("To end this session, sign out."))


def session_end(*, ctx: Actor, pk: Any) -> None:
    """Ends one of the user's own sessions (someone else's is ``AccessDenied``)."""
    gate.check(ctx, field="sessions", reauth=True, sensitive=True)
    session = access_own_session(ctx, pk)
    if ctx.session_key and session.session_key == ctx.session_key:
        raise CurrentSession()
    with transaction.atomic():
        sessions_service.session_end(ctx=ctx, user=ctx.target, session=session)


def sessions_end_others(*, ctx: Actor) -> int:
    """Ends every session of the user but ``ctx.session_key``; returns how many."""
    gate.check(ctx, field="sessions", reauth=True, sensitive=True)
    with transaction.atomic():
        return sessions_service.sessions_end_others_by_user(ctx=ctx, user=ctx.target)


def signed_in(*, ctx: Actor, user: User) -> None:
    with transaction.atomic():
        sessions_service.signed_in_record(ctx=ctx, user=user)
    sign_in_counted("success")


def sign_in_refused() -> None:
    """A sign-in's password (or login string) was wrong. Not audited: nothing
    changed, and the rate limits already count it."""
    sign_in_counted("failure")


def signed_out(*, ctx: Actor, user: User) -> None:
    with transaction.atomic():
        sessions_service.signed_out_record(ctx=ctx, user=user)
