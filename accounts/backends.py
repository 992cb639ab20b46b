from __future__ import annotations

from typing import Any

from allauth.account.auth_backends import AuthenticationBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


class PortalAuthenticationBackend(AuthenticationBackend):
    """allauth's backend (username or email), letting an account scheduled for
    deletion sign in: it then sees only the page to cancel the deletion
    (``accounts.gates.GateMiddleware``). Suspended accounts cannot.

    Every attempt with a password costs exactly one password hash, whatever the
    identifier, so that timing tells nothing about which accounts exist:

    - allauth tries a login string as an email, as a username, then the ``email``
      credential again: the same account is checked once, not once per path;
    - an unknown identifier costs allauth's one dummy hash;
    - a failure ends authentication here (``PermissionDenied`` stops Django's loop
      over ``AUTHENTICATION_BACKENDS``): ``ModelBackend``, listed only for the
      sessions it started, would otherwise hash the password a second time.
    """

    def user_can_authenticate(self, user: Any) -> bool:
        return bool(user.is_active or getattr(user, "state", "") == "pending_deletion")

    def authenticate(
        self, request: HttpRequest | None, **credentials: Any
    ) -> AbstractBaseUser | None:
        if not credentials.get("password"):
            return None
        self._checked: dict[Any, AbstractBaseUser | None] = {}
        user = super().authenticate(request, **credentials)
        if user is None:
            raise PermissionDenied
        return user

    def _check_password(
        self, user: AbstractBaseUser | None, password: str
    ) -> AbstractBaseUser | None:
        if user is None:
            return None
        if user.pk not in self._checked:
            self._checked[user.pk] = super()._check_password(user, password)
        return self._checked[user.pk]
