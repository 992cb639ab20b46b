"""After a password change, set or reset (allauth saves the password itself)."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.models import User
from accounts.notifications import notify
from accounts.services.audit import audit_record
from accounts.services.sessions import sessions_end_others


def password_changed_finalize(*, user: User, request: HttpRequest, action: str) -> None:
    """Audit, end every other session (no opt-out), tell the user."""
    audit_record(action=action, subject=user, request=request)
    sessions_end_others(user=user, request=request)
    notify(user=user, event="password_changed", request=request)
