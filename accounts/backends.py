from __future__ import annotations

from typing import Any

from allauth.account.auth_backends import AuthenticationBackend


class PortalAuthenticationBackend(AuthenticationBackend):
    """allauth's backend (username or email), letting an account scheduled for
    deletion sign in: it then sees only the page to cancel the deletion
    (``accounts.gates.GateMiddleware``). Suspended accounts cannot."""

    def user_can_authenticate(self, user: Any) -> bool:
        return bool(user.is_active or getattr(user, "state", "") == "pending_deletion")
