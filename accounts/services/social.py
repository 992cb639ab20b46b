"""After allauth linked or unlinked a social account: audit and tell the user."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import User
from accounts.notifications import notify
from accounts.services.audit import Action, audit_record


def _describe(account: Any) -> dict[str, str]:
    try:
        provider = account.get_provider().name
    except Exception:  # noqa: BLE001 - a provider removed from settings still has accounts
        provider = account.provider
    return {"provider": str(provider), "account": str(account)[:150]}


def social_account_linked(*, user: User, account: Any, request: HttpRequest | None) -> None:
    info = _describe(account)
    audit_record(action=Action.SOCIAL_LINKED, subject=user, request=request, data=info)
    notify(user=user, event="social_linked", request=request, context=info)


def social_account_unlinked(*, user: User, account: Any, request: HttpRequest | None) -> None:
    info = _describe(account)
    audit_record(action=Action.SOCIAL_UNLINKED, subject=user, request=request, data=info)
    notify(user=user, event="social_unlinked", request=request, context=info)
