"""The one code flow: prove control of a new address or number (or of the account's
email, to re-authenticate) with a one-time code, then apply the change.

Each use is a small ``CodeSpec`` / ``ChangeSpec`` (``accounts.flows.email_change``,
``accounts.flows.phone_change``, ``accounts.flows.reauth``): what the code is for,
how a target is normalised, who already has it, how the code is delivered and how
the change is written, audited and told. The operations are the same for every
use and every surface:

- ``start``: the policy, a recent re-authentication, the send allowance; a code
  for the target. A target another account has gets the same outward answer,
  but no code goes to it (its owner may be told instead).
- ``confirm``: the check allowance; the code checked and consumed and the change
  applied in one transaction, so two racing confirmations make one change.
- ``resend``, ``cancel`` and ``pending`` (a read).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.functional import Promise

from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows.errors import FlowError
from accounts.limits import Limit, limit_consume, limits_consume
from accounts.metrics import Channel, code_sent_counted
from accounts.models import User
from accounts.selectors.verification import code_pending_target
from accounts.services.audit import audit_record
from accounts.services.codes import CodeResult, Issued, code_cancel, code_consume, code_issue

# (ctx, user, target, code): sends the code to the target (after commit).
Deliver = Callable[[Actor, User, str, str], None]
# (ctx, user, before, after): tells the user what changed (after commit).
Announce = Callable[[Actor, User, str, str], None]


def _nobody(target: str, user: User) -> User | None:
    return None


def _no_limits(target: str) -> Sequence[Limit]:
    return ()


@dataclass(frozen=True, kw_only=True)
class CodeSpec:
    """A code sent to a target and checked later."""

    purpose: str
    # How the code travels (the metrics' channel label).
    channel: Channel
    # Rate-limit actions: sending a code (counted only when one is about to go
    # out) and checking one.
    send_action: str
    # More limits on the same sends, besides the user's ``send_action``: per target
    # (``Limit(action, key=target)``), per IP. Counted together: all or none.
    send_limits: Callable[[str], Sequence[Limit]] = _no_limits
    # Counts the send against a site-wide cap, after the other limits (raises
    # ``RateLimited``); None when there is none.
    site_cap: Callable[[], None] | None = None
    check_action: str = "portal_check_code"
    deliver: Deliver
    # Who else already has the target: the code is then issued but never sent,
    # and can never be confirmed.
    owner: Callable[[str, User], User | None] = _nobody
    # Tells that owner someone tried to use their address (after commit).
    tell_owner: Callable[[Actor, User], None] | None = None
    # The audit row of each code sent, with the target under ``target_key``.
    requested_action: str | None = None
    target_key: str = "target"


@dataclass(frozen=True, kw_only=True)
class ChangeSpec(CodeSpec):
    """A code that, once confirmed, changes a setting of the account."""

    # The policy field the change needs editable.
    field: str
    # The target in its stored form; raises ``ValidationError`` when it is not one.
    normalise: Callable[[str], str]
    # The user's current value, and the same value in another spelling?
    current: Callable[[User], str]
    same_as: Callable[[str, str], bool]
    same_message: Promise
    # Writes the target (locked, in the transaction): the old value, or None when
    # it can no longer be written (taken meanwhile).
    apply: Callable[..., str | None]
    changed_action: str
    # The audit action when there was no value before (else ``changed_action``).
    added_action: str | None = None
    announce: Announce
    # Starting needs a recent re-authentication; every step is refused while
    # staff impersonate the user.
    reauth: bool = True
    sensitive: bool = True


class InvalidTarget(FlowError):
    """The address or number is not one, or is already the user's (shown by the field)."""

    code = "invalid"


@dataclass(frozen=True)
class Started:
    # The target as stored (normalised); shown to the user whether or not it is free.
    target: str
    # When the code stops working (a taken target gets one too, never sent).
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Confirmed:
    result: CodeResult
    before: str = ""
    after: str = ""

    @property
    def ok(self) -> bool:
        return self.result is CodeResult.OK


def pending(user: User, spec: CodeSpec) -> str | None:
    """The target of the change waiting for its code, if any."""
    return code_pending_target(user=user, purpose=spec.purpose)


def send_code(ctx: Actor, spec: CodeSpec, *, user: User, target: str) -> Issued:
    """Issues a code for ``target`` (killing older ones), audits the request and
    schedules its delivery. Call in the caller's transaction, after the limits."""
    owner = spec.owner(target, user)
    issued = code_issue(user=user, purpose=spec.purpose, target=target, deliverable=owner is None)
    if spec.requested_action is not None:
        audit_record(
            ctx=ctx, action=spec.requested_action, subject=user, data={spec.target_key: target}
        )
    if owner is None:
        spec.deliver(ctx, user, target, issued.code)
        code_sent_counted(channel=spec.channel, purpose=spec.purpose)
    elif spec.tell_owner is not None:
        spec.tell_owner(ctx, owner)
    return issued


def _send_allowance(ctx: Actor, spec: CodeSpec, target: str) -> None:
    """Counts a code about to go out to ``target``; raises ``RateLimited`` (and
    nothing is sent or written) when a limit is reached."""
    limits_consume(ctx, Limit(spec.send_action), *spec.send_limits(target))
    if spec.site_cap is not None:
        spec.site_cap()


def _normalised(spec: ChangeSpec, user: User, target: str) -> str:
    try:
        value = spec.normalise(target)
    except ValidationError as exc:
        raise InvalidTarget(exc.messages[0]) from exc
    current = spec.current(user)
    if current and spec.same_as(value, current):
        raise InvalidTarget(spec.same_message, code="same")
    return value


def start(*, ctx: Actor, spec: ChangeSpec, target: str) -> Started:
    gate.check(ctx, field=spec.field, reauth=spec.reauth, sensitive=spec.sensitive)
    user = ctx.target
    value = _normalised(spec, user, target)
    # Counted only when a code is about to go out: a typo does not use the allowance.
    _send_allowance(ctx, spec, value)
    with transaction.atomic():
        issued = send_code(ctx, spec, user=user, target=value)
    return Started(target=value, expires_at=issued.row.expires_at)


def resend(*, ctx: Actor, spec: ChangeSpec) -> Started | None:
    """A new code for the pending change; None when nothing is pending."""
    gate.check(ctx, field=spec.field, sensitive=spec.sensitive)
    user = ctx.target
    target = pending(user, spec)
    if target is None:
        return None
    _send_allowance(ctx, spec, target)
    with transaction.atomic():
        issued = send_code(ctx, spec, user=user, target=target)
    return Started(target=target, expires_at=issued.row.expires_at)


def confirm(*, ctx: Actor, spec: ChangeSpec, code: str) -> Confirmed:
    """Applies the pending change when ``code`` is right. A refusal returns (it
    does not raise) so that the counted attempt is kept."""
    gate.check(ctx, field=spec.field, sensitive=spec.sensitive)
    user = ctx.target
    limit_consume(ctx, action=spec.check_action)
    with transaction.atomic():
        result, row = code_consume(user=user, purpose=spec.purpose, code=code)
        if result is not CodeResult.OK or row is None:
            return Confirmed(result)
        before = spec.apply(user=user, target=row.target)
        if before is None:
            return Confirmed(CodeResult.MISSING)
        action = spec.changed_action
        if not before and spec.added_action is not None:
            action = spec.added_action
        audit_record(
            ctx=ctx, action=action, subject=user, data={"before": before, "after": row.target}
        )
        spec.announce(ctx, user, before, row.target)
    return Confirmed(CodeResult.OK, before=before, after=row.target)


def cancel(*, ctx: Actor, spec: ChangeSpec) -> None:
    gate.check(ctx, field=spec.field, sensitive=spec.sensitive)
    code_cancel(user=ctx.target, purpose=spec.purpose)
