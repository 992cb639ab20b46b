"""Linked accounts. allauth's pages link and unlink them (with its rule that the
last way to sign in stays, and the portal's messages in ``accounts.adapters``);
``social_linked`` and ``social_unlinked`` are what follows, whatever the surface:
the audit row and the email. ``social_unlink`` unlinks for a surface that is not
allauth's page, under the same rules."""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.internal.flows.connect import validate_disconnect
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.access import access_own_social_account
from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows.errors import FlowError
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


class UnlinkRefused(FlowError):
    """Unlinking would leave the account no way to sign in (allauth's rule, with the
    portal's messages)."""

    code = "social.last_sign_in_method"
    status = 409


def social_unlink(*, ctx: Actor, pk: int) -> None:
    """Unlinks one of the user's linked accounts: policy ``social``, a recent
    re-authentication, refused while impersonating, someone else's id is not found,
    and the last way to sign in stays."""
    gate.check(ctx, field="social", reauth=True, sensitive=True)
    account = access_own_social_account(ctx, pk)
    try:
        # allauth's own check (the request it takes is not read).
        validate_disconnect(None, account)
    except ValidationError as exc:
        raise UnlinkRefused(exc.messages[0]) from exc
    user = ctx.target
    with transaction.atomic():
        info = social_service.social_account_remove(ctx=ctx, user=user, account=account)
        notify(ctx=ctx, user=user, event="social_unlinked", context=info)
