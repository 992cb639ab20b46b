"""The authenticator app (TOTP): start a setup, confirm it (adding or replacing the
app), remove it. Policy field ``mfa``; each needs a recent re-authentication and
is refused while staff impersonate the user."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows.mfa.errors import CodeThrottled, LastFactor, NoPendingSetup, WrongCode
from accounts.notifications import notify
from accounts.selectors.mfa import is_last_real_factor_totp, pending_totp
from accounts.services import mfa as mfa_services

FIELD = "mfa"

WRONG_SETUP_CODE = _("That code is not right. Check the time on your phone and try again.")


def _gate(ctx: Actor) -> None:
    gate.check(ctx, field=FIELD, reauth=True, sensitive=True)


def totp_start(*, ctx: Actor) -> TOTPDevice:
    """A new authenticator waiting for its first code (the confirmed one, if any,
    keeps working until then)."""
    _gate(ctx)
    return mfa_services.totp_begin(user=ctx.target)


@dataclass(frozen=True)
class TotpConfirmed:
    device: TOTPDevice
    replaced: bool
    # The first set of backup codes, to show once; None when the user had some.
    backup_codes: list[str] | None


def totp_confirm(*, ctx: Actor, code: str) -> TotpConfirmed:
    """Activates the pending authenticator when ``code`` is right. django-otp checks
    the time step, refuses replays and throttles wrong codes (those counts are kept
    even though the flow refuses)."""
    _gate(ctx)
    user = ctx.target
    device = pending_totp(user)
    if device is None:
        raise NoPendingSetup()
    check = mfa_services.code_check(devices=[device], code=code)
    if check.device is None:
        raise (
            CodeThrottled(retry_after=check.retry_after)
            if check.throttled
            else WrongCode(WRONG_SETUP_CODE)
        )
    with transaction.atomic():
        enrolled = mfa_services.totp_activate(ctx=ctx, user=user, device=device)
        notify(
            ctx=ctx,
            user=user,
            event="factor_added",
            context={"factor": gettext("authenticator app")},
        )
        if enrolled.backup_codes:
            notify(ctx=ctx, user=user, event="backup_codes_generated")
    return TotpConfirmed(
        device=device, replaced=enrolled.replaced, backup_codes=enrolled.backup_codes
    )


def totp_remove(*, ctx: Actor, confirm_last: bool = False) -> bool:
    """Removes the authenticator app; False when there was none. Removing the last
    real factor needs ``confirm_last`` (``LastFactor`` otherwise) and takes the
    backup codes with it."""
    _gate(ctx)
    user = ctx.target
    if is_last_real_factor_totp(user) and not confirm_last:
        raise LastFactor()
    with transaction.atomic():
        removed = mfa_services.totp_remove(ctx=ctx, user=user)
        if removed:
            notify(
                ctx=ctx,
                user=user,
                event="factor_removed",
                context={"factor": gettext("authenticator app")},
            )
    return removed
