"""Linked accounts: the audit rows of a link and an unlink, and the unlink itself when
it is not allauth's page that does it."""

from __future__ import annotations

from typing import Any

from accounts.actor import Actor
from accounts.models import User
from accounts.services.audit import Action, audit_record


def describe_social_account(account: Any) -> dict[str, str]:
    try:
        provider = account.get_provider().name
    except Exception:  # noqa: BLE001 - a provider removed from settings still has accounts
        provider = account.provider
    return {"provider": str(provider), "account": str(account)[:150]}


def social_account_linked(*, ctx: Actor | None, user: User, account: Any) -> dict[str, str]:
    info = describe_social_account(account)
    audit_record(ctx=ctx, action=Action.SOCIAL_LINKED, subject=user, data=info)
    return info


def social_account_unlinked(*, ctx: Actor | None, user: User, account: Any) -> dict[str, str]:
    info = describe_social_account(account)
    audit_record(ctx=ctx, action=Action.SOCIAL_UNLINKED, subject=user, data=info)
    return info


def social_account_remove(*, ctx: Actor | None, user: User, account: Any) -> dict[str, str]:
    """Removes a linked account (its tokens go with it) and audits it."""
    info = describe_social_account(account)
    account.delete()
    audit_record(ctx=ctx, action=Action.SOCIAL_UNLINKED, subject=user, data=info)
    return info
