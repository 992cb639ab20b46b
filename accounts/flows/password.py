"""The password. allauth's pages change, set and reset it (they hold the form and
the password rules); ``password_changed`` is what follows every change, whatever
the surface. ``password_change`` is the change itself for the surfaces without
allauth's pages (the Account API)."""

from __future__ import annotations

from allauth.account.fields import SetPasswordField
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.actor import Actor
from accounts.flows import gate
from accounts.limits import limit_consume
from accounts.models import User
from accounts.notifications import notify
from accounts.services.audit import Action, audit_record
from accounts.services.sessions import sessions_end_others
from accounts.services.tokens import tokens_revoke_all

# allauth's change and set password pages count their submissions here.
CHANGE_ACTION = "change_password"


def password_changed(*, ctx: Actor, user: User, action: str) -> None:
    """Audit, end every other session (no opt-out), tell the user."""
    with transaction.atomic():
        audit_record(ctx=ctx, action=action, subject=user)
        sessions_end_others(user=user, keep_session_key=ctx.session_key)
        # A token is a credential too: none outlives the old password.
        tokens_revoke_all(user=user)
        notify(ctx=ctx, user=user, event="password_changed")


def password_change(*, ctx: Actor, password: str) -> None:
    """Sets a new password (or a first one, for an account that had none), then
    ``password_changed``. The current password is not asked: the change needs a
    recent proof of identity instead.

    Raises ``ValidationError({"password": [...]})`` when the password breaks a rule
    of the password pages (the same field, so the same rules and messages)."""
    gate.check(ctx, field="password", reauth=True, sensitive=True)
    user = ctx.target
    # The same allowance as allauth's pages: every submission counts.
    limit_consume(ctx, action=CHANGE_ACTION)
    field = SetPasswordField()
    field.user = user
    try:
        field.clean(password)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    action = Action.PASSWORD_CHANGED if user.has_usable_password() else Action.PASSWORD_SET
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        password_changed(ctx=ctx, user=user, action=action)
