"""Re-authentication by a code sent to the verified primary email, for accounts
with neither a password nor a second factor (social sign-in only, for example).

The same code machinery as the verified changes (``accounts.flows.verified_change``).
The flow says whether the code is right; the web page then records allauth's
authentication in the session, the one step bound to the request.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows import verified_change as vc
from accounts.flows.errors import AccessDenied
from accounts.limits import limit_attempt, limit_consume
from accounts.models import User
from accounts.notifications import notify
from accounts.reauth import EMAIL_CODE_METHOD, has_password_or_factor
from accounts.selectors.verification import verified_primary_email
from accounts.services.audit import Action, audit_record
from accounts.services.codes import CodeResult, Purpose, code_consume, code_minutes


def _deliver(ctx: Actor, user: User, target: str, code: str) -> None:
    notify(
        ctx=ctx,
        user=user,
        event="reauth_code",
        to=target,
        context={"code": code, "minutes": code_minutes()},
    )


REAUTH_BY_EMAIL = vc.CodeSpec(
    purpose=Purpose.REAUTHENTICATE,
    channel="email",
    send_action="portal_reauthentication_code",
    deliver=_deliver,
)


def _allowed(ctx: Actor) -> User:
    gate.check(ctx, sensitive=True)
    user = ctx.target
    # Accounts with a password or a second factor prove it with those.
    if has_password_or_factor(user):
        raise AccessDenied()
    return user


def reauth_code_send(*, ctx: Actor) -> str | None:
    """Sends a code to the verified primary address; returns it (None when the
    account has none)."""
    user = _allowed(ctx)
    address = verified_primary_email(user)
    if address is None:
        return None
    limit_consume(ctx, action=REAUTH_BY_EMAIL.send_action)
    with transaction.atomic():
        vc.send_code(ctx, REAUTH_BY_EMAIL, user=user, target=address)
    return address


def reauth_code_confirm(*, ctx: Actor, code: str) -> CodeResult:
    """Checks the code; on success the re-authentication is audited and the caller
    records it where it keeps authentications (the web session)."""
    user = _allowed(ctx)
    limit_consume(ctx, action=REAUTH_BY_EMAIL.check_action)
    with transaction.atomic():
        result, _row = code_consume(user=user, purpose=REAUTH_BY_EMAIL.purpose, code=code)
        if result is CodeResult.OK:
            audit_record(
                ctx=ctx,
                action=Action.REAUTHENTICATED,
                subject=user,
                data={"method": EMAIL_CODE_METHOD},
            )
    return result


def reauth_code_sent(*, user: User) -> bool:
    return vc.pending(user, REAUTH_BY_EMAIL) is not None


def reauth_password_attempt(*, ctx: Actor) -> Callable[[], None]:
    """Counts one password attempt at re-authentication (allauth's "reauthenticate"
    limit, per user); returns what takes it back when the password is right.
    Over the limit raises ``RateLimited``: the caller ends the session, so a
    stolen session cannot go on guessing and the owner signs in again."""
    return limit_attempt(ctx, action="reauthenticate")
