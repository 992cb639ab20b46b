"""The field policy: what end users may see and change, field by field, and the
master switch. Operators only, as the back-office's policy page."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field, StrictBool, create_model

from accounts.api.management.auth import MANAGEMENT_AUTH, staff_ctx
from accounts.api.schemas import COMMON_ERRORS, Input
from accounts.flows.policy import policy_read, policy_update
from accounts.models import AccountPolicy
from accounts.policy import FIELDS

router = Router(tags=["management"], auth=MANAGEMENT_AUTH)

# accounts.models.PolicyMode's values.
Mode = Literal["off", "read_only", "edit"]


def _field(name: str) -> Any:
    return AccountPolicy._meta.get_field(name)


def _mode_fields() -> dict[str, Any]:
    """One required mode per field of the policy, described as on the policy page."""
    return {
        name: (Mode, Field(description=str(getattr(_field(name), "help_text", ""))))
        for name in FIELDS
    }


_ENABLED = Field(
    description="Master switch. Off: the settings area shows one notice and refuses every "
    "change, and every Account API call answers policy.not_enabled; sign-in, sign-out, "
    "password reset and two-step verification keep working."
)

# Built from ``accounts.policy.FIELDS``, so a new field of the policy is here too.
AccountPolicyOut = create_model(
    "AccountPolicyOut",
    __base__=Schema,
    enabled=(bool, _ENABLED),
    **_mode_fields(),
    updated_at=(datetime, ...),
)
AccountPolicyIn = create_model(
    "AccountPolicyIn",
    __base__=Input,
    enabled=(StrictBool, _ENABLED),
    **_mode_fields(),
)


def _policy(row: AccountPolicy) -> dict[str, Any]:
    return {
        "enabled": row.enabled,
        **{name: getattr(row, name) for name in FIELDS},
        "updated_at": row.updated_at,
    }


@router.get("/account-policy", response={200: AccountPolicyOut, **COMMON_ERRORS})
def account_policy_get(request: HttpRequest) -> Any:
    """The policy, as the back-office's policy page shows it (needs its "view" or
    "change account policy" permission: operators)."""
    return _policy(policy_read(ctx=staff_ctx(request)))


@router.put("/account-policy", response={200: AccountPolicyOut, **COMMON_ERRORS})
def account_policy_put(
    request: HttpRequest,
    payload: AccountPolicyIn,  # type: ignore[valid-type]
) -> Any:
    """Replaces the whole policy (every field is required), in force at once;
    audited with the modes before and after. Needs the "change account policy"
    permission (operators)."""
    row = policy_update(ctx=staff_ctx(request), values=payload.model_dump())  # type: ignore[attr-defined]
    return _policy(row)
