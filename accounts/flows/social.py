"""Linked accounts. allauth's pages link and unlink them (with its rule that the
last way to sign in stays, and the portal's messages in ``accounts.adapters``);
these flows are what follows, whatever the surface: the audit row and the email."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.actor import Actor
from accounts.models import User
from accounts.notifications import notify
from accounts.services import social as social_service


def social_linked(*, ctx: Actor, user: User, account: Any) -> None:
    with transaction.atomic():
        info = social_service.social_account_linked(ctx=ctx, user=user, account=account)
        notify(ctx=ctx, user=user, event="social_linked", context=info)


def social_unlinked(*, ctx: Actor, user: User, account: Any) -> None:
    with transaction.atomic():
        info = social_service.social_account_unlinked(ctx=ctx, user=user, account=account)
        notify(ctx=ctx, user=user, event="social_unlinked", context=info)
