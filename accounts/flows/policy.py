"""The field policy: what users may see and change of their own account."""

from __future__ import annotations

from typing import Any

from accounts.access import access_for_staff
from accounts.actor import Actor
from accounts.flows.errors import AccessDenied
from accounts.models import AccountPolicy
from accounts.services import policy as policy_service

PERMISSION = "accounts.change_accountpolicy"
# Reading it: the back-office's policy page (Django's admin lets "view" or "change" read).
READ_PERMISSIONS = ("accounts.view_accountpolicy", PERMISSION)


def policy_read(*, ctx: Actor) -> AccountPolicy:
    """The policy row as staff read it (403 without the permission)."""
    access_for_staff(ctx, READ_PERMISSIONS)
    return policy_service.policy_row()


def policy_update(*, ctx: Actor, values: dict[str, Any]) -> AccountPolicy:
    """Saves the policy (audit event with before/after, cached copy replaced).
    Staff need the permission to change it; commands act as the operator."""
    if ctx.surface != "cli":
        staff = ctx.user
        if staff is None or not staff.is_active or not staff.has_perm(PERMISSION):
            raise AccessDenied(staff=True)
    return policy_service.policy_update(ctx=ctx, values=values)
