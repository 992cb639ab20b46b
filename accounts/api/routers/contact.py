"""The email address, the phone number and the password.

A new address or number is proven with a code, in two calls: ``POST`` the value (a
code goes to it), then ``POST .../confirm`` the code (the change is applied).
Starting needs a verification; an address or number another account has gets the
same answer as a free one (no code goes to it, so it never confirms)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Router, Schema

from accounts.api.auth import ACCOUNT_AUTH, api_ctx
from accounts.api.forms import door, valid
from accounts.api.schemas import COMMON_ERRORS, Done, Input
from accounts.flows import password as password_flows
from accounts.flows import verified_change as vc
from accounts.flows.email_change import EMAIL_CHANGE
from accounts.flows.errors import CodeRefused
from accounts.flows.phone_change import PHONE_CHANGE, phone_delete
from accounts.forms import CodeForm, EmailChangeForm, PhoneForm
from accounts.policy import get_policy
from accounts.services.codes import CodeResult
from accounts.web import session_keep

router = Router(tags=["my-account"], auth=ACCOUNT_AUTH)


class PendingChange(Schema):
    """A change waiting for its code: the address or number the code was sent to,
    as it will be stored (an email address normalised, a phone number in E.164
    form), and when the code stops working."""

    pending: str
    expires_at: datetime


class CodeIn(Input):
    code: str = Field(max_length=20)


# --- The shared steps of a change proven by a code -----------------------------------


def _start(
    request: HttpRequest, spec: vc.ChangeSpec, form_class: type[forms.Form], value: str
) -> dict[str, Any]:
    """The settings page's start: its door, its form, then the flow. A value the
    flow refuses (not an address or number, or the current one) is a 422 on the
    field, as the page shows it under the field."""
    ctx = api_ctx(request)
    door(request, ctx, field=spec.field, reauth=spec.reauth, sensitive=spec.sensitive)
    form = form_class(  # type: ignore[call-arg]
        {spec.field: value}, user=request.user, policy=get_policy(request)
    )
    target = valid(form)[spec.field]
    try:
        started = vc.start(ctx=ctx, spec=spec, target=target)
    except vc.InvalidTarget as exc:
        raise ValidationError({spec.field: [str(exc.message)]}) from exc
    return {"pending": started.target, "expires_at": started.expires_at}


def _confirm(request: HttpRequest, spec: vc.ChangeSpec, code: str) -> str:
    """Applies the pending change; a refused code is a 422 whose code says why
    (``code.wrong``, ``code.expired``, ``code.exhausted``, ``code.missing``)."""
    ctx = api_ctx(request)
    door(request, ctx, field=spec.field, sensitive=spec.sensitive)
    cleaned = valid(CodeForm({"code": code}))
    outcome = vc.confirm(ctx=ctx, spec=spec, code=cleaned["code"])
    if not outcome.ok:
        raise CodeRefused(outcome.result)
    return outcome.after


def _resend(request: HttpRequest, spec: vc.ChangeSpec) -> dict[str, Any]:
    ctx = api_ctx(request)
    door(request, ctx, field=spec.field, sensitive=spec.sensitive)
    started = vc.resend(ctx=ctx, spec=spec)
    if started is None:
        raise CodeRefused(CodeResult.MISSING)
    return {"pending": started.target, "expires_at": started.expires_at}


def _cancel(request: HttpRequest, spec: vc.ChangeSpec) -> dict[str, Any]:
    ctx = api_ctx(request)
    door(request, ctx, field=spec.field, sensitive=spec.sensitive)
    vc.cancel(ctx=ctx, spec=spec)
    return {"ok": True}


# --- Email ------------------------------------------------------------------------------


class EmailIn(Input):
    email: str = Field(max_length=254)


class EmailOut(Schema):
    email: str


@router.post("/email", response={200: PendingChange, **COMMON_ERRORS})
def email_change_start(request: HttpRequest, payload: EmailIn) -> Any:
    """Sends a code to the new address (sensitive: needs a verification). The
    address becomes the account's once the code is confirmed with
    ``/api/my-account/email/confirm``. A newer request replaces the pending one."""
    return _start(request, EMAIL_CHANGE, EmailChangeForm, payload.email)


@router.post("/email/confirm", response={200: EmailOut, **COMMON_ERRORS})
def email_change_confirm(request: HttpRequest, payload: CodeIn) -> Any:
    """The code sent to the new address: the address becomes the primary one (the
    old one is told). Returns the account's email address."""
    return {"email": _confirm(request, EMAIL_CHANGE, payload.code)}


@router.post("/email/resend", response={200: PendingChange, **COMMON_ERRORS})
def email_change_resend(request: HttpRequest) -> Any:
    """A new code for the pending address (the older code dies); ``code.missing``
    when no change is pending."""
    return _resend(request, EMAIL_CHANGE)


@router.delete("/email/pending", response={200: Done, **COMMON_ERRORS})
def email_change_cancel(request: HttpRequest) -> Any:
    """Drops the pending change, if any: its code no longer works."""
    return _cancel(request, EMAIL_CHANGE)


# --- Phone ------------------------------------------------------------------------------


class PhoneIn(Input):
    phone: str = Field(max_length=32)


class PhoneOut(Schema):
    # E.164, e.g. ``+33612345678``.
    phone: str


@router.post("/phone", response={200: PendingChange, **COMMON_ERRORS})
def phone_change_start(request: HttpRequest, payload: PhoneIn) -> Any:
    """Sends a code by SMS to the new number (sensitive: needs a verification); a
    national number is read in the site's default region. It becomes the
    account's once the code is confirmed with ``/api/my-account/phone/confirm``."""
    return _start(request, PHONE_CHANGE, PhoneForm, payload.phone)


@router.post("/phone/confirm", response={200: PhoneOut, **COMMON_ERRORS})
def phone_change_confirm(request: HttpRequest, payload: CodeIn) -> Any:
    """The code sent by SMS: the number becomes the account's. Returns it."""
    return {"phone": _confirm(request, PHONE_CHANGE, payload.code)}


@router.post("/phone/resend", response={200: PendingChange, **COMMON_ERRORS})
def phone_change_resend(request: HttpRequest) -> Any:
    """A new code for the pending number (the older code dies); ``code.missing``
    when no change is pending."""
    return _resend(request, PHONE_CHANGE)


@router.delete("/phone/pending", response={200: Done, **COMMON_ERRORS})
def phone_change_cancel(request: HttpRequest) -> Any:
    """Drops the pending change, if any: its code no longer works."""
    return _cancel(request, PHONE_CHANGE)


@router.delete("/phone", response={200: Done, **COMMON_ERRORS})
def phone_remove(request: HttpRequest) -> Any:
    """Removes the account's phone number (sensitive: needs a verification); the
    user is told. Nothing happens when there is none."""
    ctx = api_ctx(request)
    door(request, ctx, field="phone", reauth=True, sensitive=True)
    phone_delete(ctx=ctx)
    return {"ok": True}


# --- Password ---------------------------------------------------------------------------


class PasswordIn(Input):
    password: str = Field(max_length=4096)


@router.post("/password", response={200: Done, **COMMON_ERRORS})
def password_change(request: HttpRequest, payload: PasswordIn) -> Any:
    """Sets a new password (or a first one); the current password is not asked,
    a verification is (sensitive). Judged by the password pages' rules.

    Every other session of the account ends and every personal access token is
    revoked, the one making this call included: with a token, this answer is the
    token's last. A session making the call stays signed in."""
    ctx = api_ctx(request)
    door(request, ctx, field="password", reauth=True, sensitive=True)
    password_flows.password_change(ctx=ctx, password=payload.password)
    if getattr(request, "api_scopes", None) is None:
        session_keep(request, request.user)
    return {"ok": True}
