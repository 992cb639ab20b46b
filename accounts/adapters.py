from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest

from accounts.usernames import normalize_username, validate_username


class AccountAdapter(DefaultAccountAdapter):
    """The portal's hooks into allauth's sign-up and sign-in flows."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(getattr(settings, "PORTAL_SIGNUP_OPEN", True))

    def clean_username(self, username: str, shallow: bool = False) -> str:
        """The portal's username rules (``accounts.usernames``) before allauth's own
        checks (length, uniqueness regardless of case)."""
        username = normalize_username(username)
        validate_username(username)
        return super().clean_username(username, shallow=shallow)
