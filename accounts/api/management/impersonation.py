"""Impersonation links: a single-use link that starts the back-office's
impersonation of an account in the calling staff member's own browser."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Router, Schema
from ninja.responses import Status

from accounts.admin.forms import impersonation_form
from accounts.api.forms import valid
from accounts.api.management.auth import MANAGEMENT_AUTH, staff_ctx
from accounts.api.schemas import COMMON_ERRORS, Input
from accounts.flows.impersonation import impersonation_link_create

router = Router(tags=["management"], auth=MANAGEMENT_AUTH)


class ImpersonationIn(Input):
    reason: str = Field(
        max_length=500,
        description="Why you need to see the account as its owner (at least 5 characters). "
        "It is recorded with the start and the end.",
    )


class ImpersonationLink(Schema):
    url: str = Field(
        description="Open it in your browser, signed in to the back-office with your second "
        "factor: it asks you to confirm, then starts. It works once."
    )
    expires_at: datetime


@router.post("/users/{user_id}/impersonation", response={201: ImpersonationLink, **COMMON_ERRORS})
def impersonation_link(request: HttpRequest, user_id: int, payload: ImpersonationIn) -> Any:
    """A single-use link, valid 10 minutes, that starts impersonating the account in
    your own back-office browser (the back-office's rules: the "impersonate user"
    permission; an active account that is neither yours, nor staff, nor a
    superuser's; checked now and again when the link is used)."""
    data = valid(impersonation_form(payload.model_dump()))
    new = impersonation_link_create(ctx=staff_ctx(request), user_pk=user_id, reason=data["reason"])
    path = reverse("admin:accounts_user_impersonate_link", args=[new.token])
    return Status(
        201, {"url": request.build_absolute_uri(path), "expires_at": new.ticket.expires_at}
    )
