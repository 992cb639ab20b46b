"""Proving one's identity before a sensitive change: each endpoint returns a
``verification_id`` to send as ``X-Verification-Id`` until ``expires_at``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema

from accounts.api.auth import ACCOUNT_AUTH, api_ctx
from accounts.api.schemas import COMMON_ERRORS, Error, Input
from accounts.flows import verifications as flows

router = Router(tags=["verifications"], auth=ACCOUNT_AUTH)

ERRORS = {**COMMON_ERRORS, 409: Error}


class Verification(Schema):
    verification_id: str
    expires_at: datetime


def _out(issued: flows.IssuedVerification) -> dict[str, Any]:
    return {"verification_id": issued.id, "expires_at": issued.expires_at}


class PasswordIn(Input):
    password: str = Field(max_length=4096)


@router.post("/password", response={200: Verification, **ERRORS})
def verify_password(request: HttpRequest, payload: PasswordIn) -> Any:
    """The account's password. Wrong ones count against the same limit as the
    settings pages' re-authentication."""
    ctx = api_ctx(request)
    return _out(flows.verification_by_password(ctx=ctx, password=payload.password))


class FactorIn(Input):
    method: Literal["totp", "backup"]
    code: str = Field(max_length=64)


@router.post("/second-factor", response={200: Verification, **ERRORS})
def verify_second_factor(request: HttpRequest, payload: FactorIn) -> Any:
    """A code from the authenticator app (``totp``) or a backup code (``backup``)."""
    ctx = api_ctx(request)
    return _out(flows.verification_by_factor(ctx=ctx, method=payload.method, code=payload.code))


class CodeSendIn(Input):
    channel: Literal["email", "phone"]


@router.post("/code", response={200: Verification, **ERRORS})
def verify_code_send(request: HttpRequest, payload: CodeSendIn) -> Any:
    """Sends a code to the account's own verified email address or phone number
    (accounts with neither a password nor a second factor). The id returned is
    not a verification yet: confirm it with ``/api/verifications/code/verify``."""
    ctx = api_ctx(request)
    return _out(flows.verification_code_send(ctx=ctx, channel=payload.channel))


class CodeVerifyIn(Input):
    verification_id: str = Field(max_length=100)
    code: str = Field(max_length=20)


@router.post("/code/verify", response={200: Verification, **ERRORS})
def verify_code(request: HttpRequest, payload: CodeVerifyIn) -> Any:
    ctx = api_ctx(request)
    return _out(
        flows.verification_code_verify(
            ctx=ctx, verification_id=payload.verification_id, code=payload.code
        )
    )
