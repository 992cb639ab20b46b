"""Which bucket a failed sign-in counts against (allauth's ``login_failed`` limit).

- Failures are counted against the account the login string names, however it
  is written: ``carol``, ``Carol`` and ``carol@example.org`` are one bucket. A
  string that names no account has its own bucket (its normalised form).
- A browser where the account's owner has signed in before is *known*: it carries
  a signed, long-lived device cookie naming that account. Its failures count in a
  bucket of its own, so someone else's guesses against the account (from browsers
  without that cookie) do not lock the owner out of their own browser.
- The per-IP limit applies to every attempt, known browser or not.

The cookie holds a random device id and the accounts signed in from it, signed
with the secret key (``django.core.signing``): it cannot be forged or moved to
another account. It is HttpOnly, SameSite=Lax and Secure like the session cookie.
"""

from __future__ import annotations

import secrets
from typing import Any

from allauth.account.internal.userkit import filter_users_by_email, get_user_by_username
from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from accounts.emails import email_key
from accounts.usernames import normalize_username

DEVICE_COOKIE = "portal_device"
DEVICE_COOKIE_MAX_AGE = 365 * 24 * 3600
_SALT = "accounts.signin_lockout.device"
# A shared computer keeps the few accounts last signed in from it.
_MAX_ACCOUNTS = 5


def _read_device(request: HttpRequest) -> tuple[str | None, list[int]]:
    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw:
        return None, []
    try:
        value = signing.loads(raw, salt=_SALT, max_age=DEVICE_COOKIE_MAX_AGE)
        device_id = str(value["d"])
        accounts = [int(pk) for pk in value["a"]]
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None, []
    return device_id, accounts


def device_remember(request: HttpRequest, response: HttpResponseBase, user: Any) -> None:
    """After a successful sign-in: this browser becomes known for ``user``."""
    device_id, accounts = _read_device(request)
    accounts = [user.pk, *(pk for pk in accounts if pk != user.pk)][:_MAX_ACCOUNTS]
    value = signing.dumps({"d": device_id or secrets.token_urlsafe(16), "a": accounts}, salt=_SALT)
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_COOKIE_MAX_AGE,
        httponly=True,
        secure=not settings.DEBUG,
        samesite="Lax",
    )


def account_for(login: str) -> Any:
    """The account a login string names, as the authentication backend finds it."""
    login = (login or "").strip()
    if not login:
        return None
    if "@" in login:
        users = filter_users_by_email(login, prefer_verified=True, for_login=True)
        if users:
            return users[0]
    return get_user_by_username(login)


def account_key(user: Any) -> str:
    return f"account:{user.pk}"


def login_failures_key(request: HttpRequest, login: str) -> str:
    user = account_for(login)
    if user is None:
        login = (login or "").strip()
        folded = email_key(login) if "@" in login else normalize_username(login)
        return f"login:{folded}"
    device_id, accounts = _read_device(request)
    if device_id and user.pk in accounts:
        return f"{account_key(user)}:device:{device_id}"
    return account_key(user)
