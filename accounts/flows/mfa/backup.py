"""Backup codes: a new set replaces the old one. They come with the first real
factor and go with the last one (``accounts.services.mfa``)."""

from __future__ import annotations

from django.db import transaction

from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows.mfa.errors import NoRealFactor
from accounts.notifications import notify
from accounts.selectors.mfa import real_factors
from accounts.services import mfa as mfa_services


def backup_codes_regenerate(*, ctx: Actor) -> list[str]:
    """A fresh set of codes, to show once; the old set stops working at once."""
    gate.check(ctx, field="mfa", reauth=True, sensitive=True)
    user = ctx.target
    if real_factors(user) == 0:
        raise NoRealFactor()
    with transaction.atomic():
        codes = mfa_services.backup_codes_generate(user=user, ctx=ctx)
        notify(ctx=ctx, user=user, event="backup_codes_generated")
    return codes
