from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    """The portal's hooks into allauth's sign-up and sign-in flows."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(getattr(settings, "PORTAL_SIGNUP_OPEN", True))
