"""Adding, changing and removing the phone number; a new number is proven by a
code sent by SMS. A number another account has gets the same outward treatment,
but no code is ever sent to it.

A new number goes through ``accounts.flows.verified_change`` with ``PHONE_CHANGE``;
removing it is ``phone_delete``."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows import verified_change as vc
from accounts.limits import Limit, site_cap_consume
from accounts.models import User
from accounts.notifications import notify, sms_schedule
from accounts.phones import format_phone, parse_phone
from accounts.services.audit import Action
from accounts.services.codes import Purpose, code_minutes
from accounts.services.phone import phone_apply, phone_remove, phone_taken


def _owner(target: str, user: User) -> User | None:
    return phone_taken(target, exclude=user)


def _language(ctx: Actor, user: User) -> str:
    return user.language or ctx.language or translation.get_language() or settings.LANGUAGE_CODE


def _deliver(ctx: Actor, user: User, target: str, code: str) -> None:
    with translation.override(_language(ctx, user)):
        body = gettext("%(code)s is your %(site)s code. It expires in %(minutes)d minutes.") % {
            "code": code,
            "site": settings.SITE_HOST,
            "minutes": code_minutes(),
        }
    sms_schedule(to=target, body=body)


def _sms_limits(target: str) -> tuple[Limit, ...]:
    # Against SMS pumping: per destination number (also protects its owner from a
    # flood of codes) and per client address, besides the account's own allowance.
    return (Limit("portal_sms_destination", key=target), Limit("portal_sms_ip"))


def _sms_site_cap() -> None:
    site_cap_consume("sms", cap=settings.SMS_SITE_HOURLY_CAP)


def _announce(ctx: Actor, user: User, before: str, after: str) -> None:
    notify(
        ctx=ctx,
        user=user,
        event="phone_changed" if before else "phone_added",
        context={"phone": format_phone(after), "old_phone": format_phone(before)},
    )


PHONE_CHANGE = vc.ChangeSpec(
    purpose=Purpose.PHONE_CHANGE,
    channel="sms",
    field="phone",
    send_action="portal_phone_change_code",
    send_limits=_sms_limits,
    site_cap=_sms_site_cap,
    normalise=parse_phone,
    current=lambda user: user.phone,
    same_as=lambda new, old: new == old,
    same_message=_("This is already your phone number."),
    owner=_owner,
    deliver=_deliver,
    apply=phone_apply,
    requested_action=Action.PHONE_CHANGE_REQUESTED,
    target_key="phone",
    changed_action=Action.PHONE_CHANGED,
    added_action=Action.PHONE_ADDED,
    announce=_announce,
)


def phone_delete(*, ctx: Actor) -> str:
    """Removes the number and tells the user; returns the old one ('' when none)."""
    gate.check(ctx, field="phone", reauth=True, sensitive=True)
    user = ctx.target
    with transaction.atomic():
        old = phone_remove(ctx=ctx, user=user)
        if old:
            notify(
                ctx=ctx, user=user, event="phone_removed", context={"old_phone": format_phone(old)}
            )
    return old
