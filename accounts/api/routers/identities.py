"""Linked accounts (identities at social providers): list them, unlink one.
Policy field ``social``. Linking stays on the settings page: it goes through the
provider's own sign-in in the browser."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Path, Router, Schema

from accounts.api.auth import ACCOUNT_AUTH, api_ctx
from accounts.api.forms import door
from accounts.api.schemas import COMMON_ERRORS, Done, Error
from accounts.flows import social as flows
from accounts.flows.errors import AccessDenied
from accounts.models import User
from accounts.policy import get_policy, require_readable
from accounts.selectors.social import linked_accounts_list, own_linked_account

router = Router(tags=["identities"], auth=ACCOUNT_AUTH)

# A provider id or an account id there: printable, bounded (allauth's columns).
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


class Identity(Schema):
    """A linked account. ``display_name`` is the account's name at the provider
    (its username or address), ``email`` the address the provider gave, when it
    gave one."""

    provider: str
    provider_name: str
    uid: str
    display_name: str
    email: str | None
    linked_at: datetime
    last_login: datetime | None


@router.get("/identities", response={200: list[Identity], **COMMON_ERRORS})
def identities(request: HttpRequest) -> Any:
    """The linked accounts, oldest link first."""
    api_ctx(request)
    require_readable(get_policy(request), "social")
    user: User = request.user  # type: ignore[assignment]
    return [
        {
            "provider": row.provider,
            "provider_name": row.provider_name,
            "uid": row.uid,
            "display_name": row.display,
            "email": row.email,
            "linked_at": row.linked_at,
            "last_login": row.last_login,
        }
        for row in linked_accounts_list(user=user)
    ]


@router.delete(
    "/identities/{provider}/{path:uid}", response={200: Done, **COMMON_ERRORS, 409: Error}
)
def identity_unlink(
    request: HttpRequest,
    provider: str = Path(..., max_length=200, pattern=PRINTABLE),
    uid: str = Path(..., max_length=191, pattern=PRINTABLE),
) -> Any:
    """Unlinks one of the account's linked accounts (``uid`` may contain ``/``).
    The last way to sign in is kept: 409 ``social.last_sign_in_method`` when
    unlinking would leave the account without a password and without another
    linked account (or without a verified email address to reset the password
    with). Needs a verification."""
    ctx = api_ctx(request)
    door(request, ctx, field="social", reauth=True, sensitive=True)
    account = own_linked_account(user=ctx.target, provider=provider, uid=uid)
    if account is None:
        raise AccessDenied()
    flows.social_unlink(ctx=ctx, pk=account.pk)
    return {"ok": True}
