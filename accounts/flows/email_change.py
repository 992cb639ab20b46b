"""Changing the primary email address, proven by a code sent to the new address.

A taken address (or a look-alike of one) gets the same outward treatment as a free
one: no code goes to it, and its owner is told someone tried to use it.

Every surface runs it through ``accounts.flows.verified_change``:
``start(ctx=ctx, spec=EMAIL_CHANGE, target=address)``, then ``confirm``, ``resend``,
``cancel`` and ``pending``.
"""

from __future__ import annotations

from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from accounts.actor import Actor
from accounts.emails import email_key, normalize_email
from accounts.flows import verified_change as vc
from accounts.models import User
from accounts.notifications import notify
from accounts.services.audit import Action
from accounts.services.codes import Purpose, code_minutes
from accounts.services.email import email_apply, email_taken


def _normalise(value: str) -> str:
    value = normalize_email(value)
    validate_email(value)
    return value


def _owner(target: str, user: User) -> User | None:
    return email_taken(target, exclude=user)


def _deliver(ctx: Actor, user: User, target: str, code: str) -> None:
    notify(
        ctx=ctx,
        user=user,
        event="email_change_code",
        to=target,
        context={"code": code, "new_email": target, "minutes": code_minutes()},
    )


def _tell_owner(ctx: Actor, owner: User) -> None:
    notify(ctx=ctx, user=owner, event="email_in_use")


def _announce(ctx: Actor, user: User, before: str, after: str) -> None:
    # To the old address: the new one is the user's own doing, the old one may not be.
    notify(
        ctx=ctx,
        user=user,
        event="email_changed",
        to=before,
        context={"old_email": before, "new_email": after},
    )


EMAIL_CHANGE = vc.ChangeSpec(
    purpose=Purpose.EMAIL_CHANGE,
    channel="email",
    field="email",
    send_action="portal_email_change_code",
    normalise=_normalise,
    current=lambda user: user.email,
    same_as=lambda new, old: email_key(new) == email_key(old),
    same_message=_("This is already your email address."),
    owner=_owner,
    tell_owner=_tell_owner,
    deliver=_deliver,
    apply=email_apply,
    requested_action=Action.EMAIL_CHANGE_REQUESTED,
    target_key="new_email",
    changed_action=Action.EMAIL_CHANGED,
    announce=_announce,
)
