"""The user downloads everything the portal holds about them (no secrets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.actor import Actor
from accounts.flows import gate
from accounts.limits import limit_consume
from accounts.selectors.export import user_data
from accounts.services.audit import Action, audit_record


@dataclass(frozen=True)
class DataExport:
    data: dict[str, Any]
    filename: str


def data_export(*, ctx: Actor) -> DataExport:
    gate.check(ctx, field="data_export", reauth=True, sensitive=True)
    limit_consume(ctx, action="portal_data_export")
    user = ctx.target
    data = user_data(user=user)
    with transaction.atomic():
        audit_record(ctx=ctx, action=Action.DATA_EXPORTED, subject=user)
    stamp = timezone.now().strftime("%Y%m%d")
    return DataExport(data=data, filename=f"account-{user.pk}-{stamp}.json")
