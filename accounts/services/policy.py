from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts import policy as policy_module
from accounts.actor import Actor
from accounts.models import AccountPolicy, PolicyMode
from accounts.services.audit import Action, audit_record

_VALID_MODES = {mode.value for mode in PolicyMode}


def _snapshot(row: AccountPolicy) -> dict[str, Any]:
    return {"enabled": row.enabled, **{name: getattr(row, name) for name in policy_module.FIELDS}}


@transaction.atomic
def policy_update(*, ctx: Actor | None, values: dict[str, Any]) -> AccountPolicy:
    """Saves the policy, records before/after, and replaces the cached copy."""
    for name, value in values.items():
        if name == "enabled":
            if not isinstance(value, bool):
                raise ValueError("enabled must be a boolean")
        elif name not in policy_module.FIELDS:
            raise ValueError(f"unknown policy field {name!r}")
        elif value not in _VALID_MODES:
            raise ValueError(f"invalid mode {value!r} for {name}")
    row, _created = AccountPolicy.objects.select_for_update().get_or_create(pk=1)
    before = _snapshot(row)
    for name, value in values.items():
        setattr(row, name, value)
    row.save()
    after = _snapshot(row)
    changed = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}
    audit_record(
        action=Action.POLICY_CHANGED,
        ctx=ctx,
        subject=None,
        data={"before": before, "after": after, "changed": changed},
    )
    # Forget the cached copy now, and store the saved row after commit: other
    # processes only ``add`` what they read, so a copy of the old row read before the
    # commit cannot outlive it.
    policy_module.forget_policy()
    saved = policy_module.Policy.from_row(row)
    transaction.on_commit(lambda: policy_module.store_policy(saved))
    return row


def policy_row() -> AccountPolicy:
    """The single policy row, created with the defaults on first use."""
    row, _created = AccountPolicy.objects.get_or_create(pk=1)
    return row
