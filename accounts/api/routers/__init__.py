"""The Account API's routers, one module per settings section."""

from __future__ import annotations

from ninja import Router

from accounts.api.routers import account, contact, identities, mfa, sessions, verifications

ROUTERS: list[tuple[str, Router]] = [
    ("/my-account", account.router),
    ("/my-account", contact.router),
    ("/my-account", mfa.router),
    ("/my-account", identities.router),
    ("/my-account", sessions.router),
    ("/verifications", verifications.router),
]
