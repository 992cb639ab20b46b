"""The user's linked accounts (allauth's social accounts), as the linked accounts
page shows them: the provider's brand, the account's name there, when it was
linked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.db.models import QuerySet

from accounts.models import User
from accounts.prepared import prepared


@dataclass(frozen=True)
class LinkedAccount:
    pk: int
    provider: str
    provider_name: str
    uid: str
    display: str
    email: str | None
    linked_at: datetime
    last_login: datetime | None


def _email(provider: Any, account: SocialAccount) -> str | None:
    addresses = provider.extract_email_addresses(account.extra_data or {})
    for address in addresses:
        if getattr(address, "primary", False) and address.email:
            return str(address.email)
    return str(addresses[0].email) if addresses and addresses[0].email else None


_UNKNOWN = object()


def _provider(account: SocialAccount, providers: dict[str, Any]) -> Any:
    """The account's provider, looked up once per provider (its app may be a row);
    None for a provider removed from the settings (its accounts stay)."""
    provider = providers.get(account.provider, _UNKNOWN)
    if provider is _UNKNOWN:
        try:
            provider = account.get_provider()
        except Exception:  # noqa: BLE001 - unknown provider, or its app was deleted
            provider = None
        providers[account.provider] = provider
    return provider


def _names(account: SocialAccount, provider: Any) -> tuple[str, str, str | None]:
    """The provider's brand name, the account's name there, its email address."""
    if provider is None:
        return account.provider, "", None
    account._provider = provider
    try:
        provider_account = account.get_provider_account()
        return (
            str(provider_account.get_brand()["name"]),
            str(provider_account),
            _email(provider, account),
        )
    except Exception:  # noqa: BLE001 - extra data of an unexpected shape
        return account.provider, "", None


def _describe(account: SocialAccount, providers: dict[str, Any]) -> LinkedAccount:
    name, display, email = _names(account, _provider(account, providers))
    return LinkedAccount(
        pk=account.pk,
        provider=account.provider,
        provider_name=name,
        uid=account.uid,
        display=display[:150],
        email=email,
        linked_at=account.date_joined,
        last_login=account.last_login,
    )


@prepared
def _accounts(user_id: int) -> QuerySet[SocialAccount]:
    return SocialAccount.objects.filter(user_id=user_id).order_by("date_joined", "pk")


def linked_accounts_list(*, user: User) -> list[LinkedAccount]:
    """The user's linked accounts, oldest link first (the page, the APIs).
    Prepared (``accounts.prepared``): the page is read far more than it changes."""
    providers: dict[str, Any] = {}
    return [_describe(account, providers) for account in _accounts(user.pk)]


def own_linked_account(*, user: User, provider: str, uid: str) -> SocialAccount | None:
    """The user's own account at ``provider`` with ``uid``, if linked."""
    return SocialAccount.objects.filter(user=user, provider=provider, uid=uid).first()
