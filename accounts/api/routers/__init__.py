"""The Account API's routers, one module per settings section."""

from __future__ import annotations

from ninja import Router

from accounts.api.management import audit as management_audit
from accounts.api.management import impersonation as management_impersonation
from accounts.api.management import lifecycle as management_lifecycle
from accounts.api.management import policy as management_policy
from accounts.api.management import security as management_security
from accounts.api.management import users as management_users
from accounts.api.routers import (
    account,
    connected_apps,
    contact,
    data,
    identities,
    mfa,
    sessions,
    tokens,
    verifications,
)

ROUTERS: list[tuple[str, Router]] = [
    ("/my-account", account.router),
    ("/my-account", contact.router),
    ("/my-account", mfa.router),
    ("/my-account", identities.router),
    ("/my-account", sessions.router),
    ("/my-account", data.router),
    ("/my-account", tokens.router),
    ("/my-account", connected_apps.router),
    ("/verifications", verifications.router),
    # The Management API (accounts.api.management).
    ("/management", management_users.router),
    ("/management", management_security.router),
    ("/management", management_impersonation.router),
    ("/management", management_audit.router),
    ("/management", management_policy.router),
    ("/management", management_lifecycle.router),
]
