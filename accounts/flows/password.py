"""The password. allauth's pages change, set and reset it (they hold the form and
the password rules); this flow is what follows every change, whatever the surface."""

from __future__ import annotations

from django.db import transaction

from accounts.actor import Actor
from accounts.models import User
from accounts.notifications import notify
from accounts.services.audit import audit_record
from accounts.services.sessions import sessions_end_others
from accounts.services.tokens import tokens_revoke_all


def password_changed(*, ctx: Actor, user: User, action: str) -> None:
    """Audit, end every other session (no opt-out), tell the user."""
    with transaction.atomic():
        audit_record(ctx=ctx, action=action, subject=user)
        sessions_end_others(user=user, keep_session_key=ctx.session_key)
        # A token is a credential too: none outlives the old password.
        tokens_revoke_all(user=user)
        notify(ctx=ctx, user=user, event="password_changed")
