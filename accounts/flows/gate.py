"""The checks every flow makes before it writes, in this order: the field policy,
a recent re-authentication, and the refusal of sensitive settings while staff
impersonate the user. The web pages check the same at the door
(``accounts.gates``); checking again here means no surface and no request
replayed after a re-authentication can skip a rule that changed meanwhile.

Staff in the back-office and commands act under their own permissions, not under
the end users' field policy.
"""

from __future__ import annotations

import time

from django.conf import settings

from accounts.actor import Actor
from accounts.flows.errors import ImpersonationRefused, ReauthenticationRequired
from accounts.policy import Policy, load_policy, require_editable, require_readable

SELF_SERVICE = frozenset({"web", "api", "token", "app"})


def recently_reauthenticated(ctx: Actor) -> bool:
    if ctx.reauthenticated_at is None:
        return False
    return time.time() - ctx.reauthenticated_at < settings.ACCOUNT_REAUTHENTICATION_TIMEOUT


def check(
    ctx: Actor,
    *,
    field: str | None = None,
    edit: bool = True,
    reauth: bool = False,
    sensitive: bool = False,
    policy: Policy | None = None,
) -> None:
    """Raises when a user's own change (or, with ``edit=False``, read) may not go
    ahead: ``Http404`` (field off), ``PolicyDenied`` (read-only or settings off),
    ``ReauthenticationRequired``, ``ImpersonationRefused``."""
    if ctx.surface not in SELF_SERVICE or ctx.subject is not None:
        # Staff acting on another account (back-office, Management API) act under
        # their own permissions, which the staff flows check.
        return
    if field is not None:
        policy = policy or load_policy()
        if edit:
            require_editable(policy, field)
        else:
            require_readable(policy, field)
    if sensitive and ctx.impersonating:
        raise ImpersonationRefused()
    if reauth and not recently_reauthenticated(ctx):
        raise ReauthenticationRequired()
