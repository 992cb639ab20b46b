"""Giving a second factor: the second step of sign-in, and re-authentication with
a second factor. A code from the authenticator app, a backup code, or a security
key / passkey (checked by django-otp-webauthn's ceremony before the flow runs).

The session side (allauth's authentication record, django-otp's verified device,
ending the login stage) stays with the web views; the flows check and record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows.errors import AccessDenied
from accounts.flows.mfa.errors import CodeThrottled, WrongCode
from accounts.metrics import sign_in_counted
from accounts.models import User
from accounts.notifications import notify
from accounts.services import mfa as mfa_services
from accounts.services.audit import Action, audit_record
from accounts.services.mfa import FactorKind


@dataclass(frozen=True)
class Verified:
    device: Any
    kind: FactorKind


def _checked(*, user: User, method: str, code: str) -> Any:
    check = mfa_services.second_factor_check(user=user, method=method, code=code)
    if check.device is None:
        raise CodeThrottled(retry_after=check.retry_after) if check.throttled else WrongCode()
    return check.device


def _backup_code_used(ctx: Actor, user: User, kind: FactorKind) -> None:
    if kind == "backup":
        audit_record(ctx=ctx, action=Action.BACKUP_CODE_USED, subject=user, actor=user)
        notify(ctx=ctx, user=user, event="backup_code_used")


def _signed_in(ctx: Actor, user: User, device: Any) -> Verified:
    kind = mfa_services.factor_kind(device)
    with transaction.atomic():
        _backup_code_used(ctx, user, kind)
        audit_record(
            ctx=ctx, action=Action.MFA_SIGN_IN, subject=user, actor=user, data={"method": kind}
        )
        notify(ctx=ctx, user=user, event="mfa_sign_in", context={"method": kind})
    sign_in_counted("second_step_success")
    return Verified(device=device, kind=kind)


def _reauthenticated(ctx: Actor, user: User, device: Any) -> Verified:
    kind = mfa_services.factor_kind(device)
    with transaction.atomic():
        _backup_code_used(ctx, user, kind)
        audit_record(ctx=ctx, action=Action.REAUTHENTICATED, subject=user, data={"method": kind})
    return Verified(device=device, kind=kind)


def _own_device(user: User, device: Any) -> None:
    if device is None or device.user_id != user.pk:
        raise AccessDenied()


# --- Sign-in: the user is not signed in yet (``ctx.user`` is None) ------------------------
# The second step works whatever the policy: it protects the account.


def sign_in_with_code(*, ctx: Actor, user: User, method: str, code: str) -> Verified:
    """``user`` passed the first step; ``code`` is from their app or a backup code."""
    try:
        device = _checked(user=user, method=method, code=code)
    except (WrongCode, CodeThrottled):
        sign_in_counted("second_step_failure")
        raise
    return _signed_in(ctx, user, device)


def sign_in_with_key(*, ctx: Actor, user: User, device: Any) -> Verified:
    """``device`` answered the WebAuthn ceremony for ``user``."""
    try:
        _own_device(user, device)
    except AccessDenied:
        sign_in_counted("second_step_failure")
        raise
    return _signed_in(ctx, user, device)


# --- Re-authentication: refused while staff impersonate the user --------------------------


def reauthenticate_with_code(*, ctx: Actor, method: str, code: str) -> Verified:
    gate.check(ctx, sensitive=True)
    user = ctx.target
    return _reauthenticated(ctx, user, _checked(user=user, method=method, code=code))


def reauthenticate_with_key(*, ctx: Actor, device: Any) -> Verified:
    gate.check(ctx, sensitive=True)
    user = ctx.target
    _own_device(user, device)
    return _reauthenticated(ctx, user, device)
