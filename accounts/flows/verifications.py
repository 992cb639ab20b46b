"""Proofs of identity for programs (the Account API's ``/api/verifications``).

A web page records a re-authentication in the session; a program has no session,
so each proof becomes a row (``ApiVerification``) named by a random id the
program sends back as ``X-Verification-Id``. An identity verification counts as a
re-authentication of its own user for ``ACCOUNT_REAUTHENTICATION_TIMEOUT`` seconds.

The proofs are the web page's: the password (allauth's "reauthenticate" limit,
the same counter as the page), a second factor (app or backup code), or, for
accounts with neither, a code sent to the verified primary email or phone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows import verified_change as vc
from accounts.flows.errors import CodeRefused, FlowError
from accounts.flows.mfa import reauthenticate_with_code
from accounts.flows.phone_change import _deliver as deliver_sms_code
from accounts.flows.phone_change import _sms_limits, _sms_site_cap
from accounts.flows.reauth import REAUTH_BY_EMAIL, reauth_password_attempt
from accounts.limits import Limit, limit_consume, limits_consume
from accounts.models import ApiVerification, User
from accounts.reauth import has_password_or_factor
from accounts.selectors.verification import verified_primary_email
from accounts.services.audit import Action, audit_record
from accounts.services.codes import CodeResult, Purpose, code_consume, code_timeout

ID_PREFIX = "vrf_"
MAX_ID_LENGTH = 80
Channel = Literal["email", "phone"]

REAUTH_BY_PHONE = vc.CodeSpec(
    purpose=Purpose.REAUTHENTICATE,
    channel="sms",
    send_action="portal_reauthentication_code",
    send_limits=_sms_limits,
    site_cap=_sms_site_cap,
    deliver=deliver_sms_code,
)


class VerificationFailed(FlowError):
    """The password or code given does not prove who the user is."""

    code = "verification.failed"
    status = 422


class MethodUnavailable(FlowError):
    code = "verification.method_unavailable"
    status = 409


class VerificationInvalid(FlowError):
    """``X-Verification-Id`` names no identity verification of this user."""

    code = "verification.invalid"
    status = 401

    def __init__(self) -> None:
        super().__init__(
            _("This verification is not valid for your account. Verify your identity again.")
        )


class VerificationExpired(FlowError):
    code = "verification.expired"
    status = 401

    def __init__(self) -> None:
        super().__init__(_("This verification has expired. Verify your identity again."))


@dataclass(frozen=True)
class IssuedVerification:
    # The id the program sends back (shown once; only its hash is stored).
    id: str
    expires_at: datetime


def _digest(raw: str) -> str:
    return salted_hmac("accounts.api_verification", raw, algorithm="sha256").hexdigest()


def _issue(
    user: User, *, purpose: str, method: str, lifetime: timedelta
) -> tuple[IssuedVerification, ApiVerification]:
    raw = ID_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    row = ApiVerification.objects.create(
        user=user,
        digest=_digest(raw),
        purpose=purpose,
        method=method,
        verified_at=now if purpose == ApiVerification.Purpose.IDENTITY else None,
        expires_at=now + lifetime,
    )
    return IssuedVerification(id=raw, expires_at=row.expires_at), row


def _identity(ctx: Actor, user: User, method: str) -> IssuedVerification:
    window = timedelta(seconds=settings.ACCOUNT_REAUTHENTICATION_TIMEOUT)
    with transaction.atomic():
        issued, _row = _issue(
            user, purpose=ApiVerification.Purpose.IDENTITY, method=method, lifetime=window
        )
        audit_record(ctx=ctx, action=Action.REAUTHENTICATED, subject=user, data={"method": method})
    return issued


def verification_by_password(*, ctx: Actor, password: str) -> IssuedVerification:
    """Counts against the page's "reauthenticate" limit (wrong passwords only)."""
    gate.check(ctx, sensitive=True)
    user = ctx.target
    if not user.has_usable_password():
        raise MethodUnavailable(_("Your account has no password. Use another way to verify."))
    rollback = reauth_password_attempt(ctx=ctx)
    if not user.check_password(password):
        raise VerificationFailed(_("That password is not right."))
    rollback()
    return _identity(ctx, user, "password")


def verification_by_factor(*, ctx: Actor, method: str, code: str) -> IssuedVerification:
    """A code from the authenticator app (``totp``) or a backup code (``backup``)."""
    verified = reauthenticate_with_code(ctx=ctx, method=method, code=code)
    return _identity(ctx, ctx.target, verified.kind)


def _code_target(user: User, channel: Channel) -> str:
    if channel == "email":
        address = verified_primary_email(user)
        if address is None:
            raise MethodUnavailable(_("Your account has no verified email address."))
        return address
    if not (user.phone and user.phone_verified):
        raise MethodUnavailable(_("Your account has no verified phone number."))
    return user.phone


def verification_code_send(*, ctx: Actor, channel: Channel) -> IssuedVerification:
    """Sends a code to the user's own verified email or phone and returns the id
    of the pending verification (checked by ``verification_code_verify``). For
    accounts with neither a password nor a second factor, as on the web pages."""
    gate.check(ctx, sensitive=True)
    user = ctx.target
    if has_password_or_factor(user):
        raise MethodUnavailable(_("Verify with your password or your second factor instead."))
    target = _code_target(user, channel)
    spec = REAUTH_BY_EMAIL if channel == "email" else REAUTH_BY_PHONE
    limits_consume(ctx, Limit(spec.send_action), *spec.send_limits(target))
    if spec.site_cap is not None:
        spec.site_cap()
    with transaction.atomic():
        vc.send_code(ctx, spec, user=user, target=target)
        issued, _row = _issue(
            user,
            purpose=ApiVerification.Purpose.CODE,
            method=f"{channel}_code",
            lifetime=code_timeout(),
        )
    return issued


def verification_code_verify(*, ctx: Actor, verification_id: str, code: str) -> IssuedVerification:
    """Checks the code sent for ``verification_id``; the same id then proves the
    user's identity."""
    gate.check(ctx, sensitive=True)
    user = ctx.target
    row = _find(user, verification_id, purpose=ApiVerification.Purpose.CODE)
    limit_consume(ctx, action="portal_check_code")
    with transaction.atomic():
        result, _code = code_consume(user=user, purpose=Purpose.REAUTHENTICATE, code=code)
        if result is CodeResult.OK:
            now = timezone.now()
            row.purpose = ApiVerification.Purpose.IDENTITY
            row.verified_at = now
            row.expires_at = now + timedelta(seconds=settings.ACCOUNT_REAUTHENTICATION_TIMEOUT)
            row.save(update_fields=["purpose", "verified_at", "expires_at"])
            audit_record(
                ctx=ctx, action=Action.REAUTHENTICATED, subject=user, data={"method": row.method}
            )
    if result is not CodeResult.OK:
        raise CodeRefused(result)
    return IssuedVerification(id=verification_id, expires_at=row.expires_at)


def _find(user: User, raw: str, *, purpose: str) -> ApiVerification:
    if not raw or len(raw) > MAX_ID_LENGTH or not raw.startswith(ID_PREFIX):
        raise VerificationInvalid()
    row = ApiVerification.objects.filter(digest=_digest(raw)).first()
    if row is None or row.user_id != user.pk or row.purpose != purpose:
        raise VerificationInvalid()
    if row.expires_at <= timezone.now():
        raise VerificationExpired()
    return row


def verified_at(*, user: User, verification_id: str) -> float:
    """When ``verification_id`` proved ``user``'s identity (epoch seconds), for the
    ``Actor``; ``VerificationInvalid`` or ``VerificationExpired`` otherwise."""
    row = _find(user, verification_id, purpose=ApiVerification.Purpose.IDENTITY)
    assert row.verified_at is not None
    return row.verified_at.timestamp()
