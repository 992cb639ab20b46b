"""Personal access tokens: a user makes them for their own programs (Account API)
and revokes them. Both are sensitive: a recent re-authentication, never while
staff impersonate the user. Each is audited and told to the user.

Staff with the permission make and revoke a user's tokens too (Management API):
``token_create_for_user`` and ``token_revoke_for_user``, under the guard rails of
every staff action."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.access import access_own_token, int_pk
from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows.errors import AccessDenied, FlowError
from accounts.flows.moderation import staff_target
from accounts.limits import limit_consume
from accounts.models import PersonalAccessToken, TokenScope, User
from accounts.notifications import notify
from accounts.selectors.mfa import has_real_factor
from accounts.services import tokens as token_service
from accounts.services.tokens import NewToken

FIELD = "tokens"
MAX_LIFETIME = timedelta(days=365)
NAME_MAX_LENGTH = 100
ACCOUNT_SCOPES = (TokenScope.ACCOUNT_READ.value, TokenScope.ACCOUNT_WRITE.value)


def scopes_for(user: User) -> list[str]:
    """The scopes ``user`` may give a token: the Account API's, and ``management``
    for staff members with a second factor (their back-office permissions apply)."""
    if user.is_staff and has_real_factor(user):
        return [*ACCOUNT_SCOPES, TokenScope.MANAGEMENT.value]
    return list(ACCOUNT_SCOPES)


class TooManyTokens(FlowError):
    code = "tokens.too_many"
    status = 409

    def __init__(self, message: object = "") -> None:
        super().__init__(
            message
            or _(
                "You have as many tokens as an account may have. "
                "Revoke one you no longer use first."
            )
        )


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": _("Give the token a name.")})
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(
            {"name": _("Use at most %(max)d characters.") % {"max": NAME_MAX_LENGTH}}
        )
    if any(not ch.isprintable() for ch in name):
        raise ValidationError({"name": _("The name can't contain control characters.")})
    return name


def _clean_scopes(scopes: list[str], user: User) -> list[str]:
    if not scopes:
        raise ValidationError({"scopes": _("Choose at least one scope.")})
    if TokenScope.MANAGEMENT.value in scopes and TokenScope.MANAGEMENT.value not in scopes_for(
        user
    ):
        raise ValidationError(
            {
                "scopes": _(
                    "Only staff members with two-step verification may give a token "
                    "the management scope."
                )
            }
        )
    unknown = set(scopes) - set(TokenScope.values)
    if unknown:
        raise ValidationError(
            {"scopes": _("Unknown scope: %(scopes)s.") % {"scopes": ", ".join(sorted(unknown))}}
        )
    return sorted(set(scopes))


def _clean_expiry(expires_at: datetime) -> datetime:
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, timezone.get_default_timezone())
    now = timezone.now()
    if expires_at <= now:
        raise ValidationError({"expires_at": _("Choose a date in the future.")})
    if expires_at > now + MAX_LIFETIME:
        raise ValidationError({"expires_at": _("A token lasts one year at most.")})
    # In UTC: PostgreSQL refuses offsets beyond 15:59, which a datetime may carry.
    return expires_at.astimezone(UTC)


def token_create(*, ctx: Actor, name: str, scopes: list[str], expires_at: datetime) -> NewToken:
    """Returns the token and its full text, to be shown once. ``ValidationError``
    (per field) for a bad name, scope or expiry."""
    gate.check(ctx, field=FIELD, reauth=True, sensitive=True)
    user = ctx.target
    errors: dict[str, Any] = {}
    cleaned: dict[str, Any] = {}
    checks: tuple[tuple[str, Callable[[Any], Any], Any], ...] = (
        ("name", _clean_name, name),
        ("scopes", lambda value: _clean_scopes(value, user), scopes),
        ("expires_at", _clean_expiry, expires_at),
    )
    for key, clean, value in checks:
        try:
            cleaned[key] = clean(value)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    limit_consume(ctx, action="portal_token_create")
    with transaction.atomic():
        live = PersonalAccessToken.objects.filter(
            user=user, revoked_at__isnull=True, expires_at__gt=timezone.now()
        ).count()
        if live >= settings.PERSONAL_ACCESS_TOKENS_PER_USER:
            raise TooManyTokens()
        new = token_service.token_create(ctx=ctx, user=user, **cleaned)
        notify(
            ctx=ctx,
            user=user,
            event="token_created",
            context={"name": new.token.name, "expires_at": new.token.expires_at},
        )
    return new


def token_revoke(*, ctx: Actor, pk: Any) -> PersonalAccessToken:
    """Someone else's token, or an unknown id, is ``AccessDenied`` (404)."""
    gate.check(ctx, field=FIELD, reauth=True, sensitive=True)
    token = access_own_token(ctx, pk)
    with transaction.atomic():
        if token_service.token_revoke(ctx=ctx, token=token):
            notify(ctx=ctx, user=token.user, event="token_revoked", context={"name": token.name})
    return token


# --- Staff making and revoking a user's tokens (Management API) ---------------------------

# Django's model permissions of ``PersonalAccessToken``: no role has them, superusers do.
CREATE_FOR_USER_PERMISSION = "add_personalaccesstoken"
REVOKE_FOR_USER_PERMISSION = "delete_personalaccesstoken"


class NotActive(FlowError):
    """A token for an account that may not use the site: it would come back to life
    when the account is restored, though suspension and deletion end every token."""

    code = "wrong_state"
    status = 409

    def __init__(self) -> None:
        super().__init__(_("Only an active account can be given a token."))


def _clean_account_scopes(scopes: list[str]) -> list[str]:
    """A token staff make for a user has the Account API's scopes only, never
    ``management`` (even for a staff member's account)."""
    if not scopes:
        raise ValidationError({"scopes": _("Choose at least one scope.")})
    refused = set(scopes) - set(ACCOUNT_SCOPES)
    if refused:
        raise ValidationError(
            {
                "scopes": _("A token made for someone else may have only these scopes: %(scopes)s.")
                % {"scopes": ", ".join(ACCOUNT_SCOPES)}
            }
        )
    return sorted(set(scopes))


def token_create_for_user(
    *, ctx: Actor, name: str, scopes: list[str], expires_at: datetime
) -> NewToken:
    """Staff make a token for the account ``ctx`` acts on (permission
    ``accounts.add_personalaccesstoken``; not their own account — they make theirs
    themselves —, other staff only by superusers). Same name, expiry and number
    rules as the user's own tokens; the Account API's scopes only. The token
    records who made it; audited with the staff member as actor; the user is told.
    Returns the token and its full text, to be handed over once."""
    target = staff_target(ctx, CREATE_FOR_USER_PERMISSION)
    errors: dict[str, Any] = {}
    cleaned: dict[str, Any] = {}
    checks: tuple[tuple[str, Callable[[Any], Any], Any], ...] = (
        ("name", _clean_name, name),
        ("scopes", _clean_account_scopes, scopes),
        ("expires_at", _clean_expiry, expires_at),
    )
    for key, clean, value in checks:
        try:
            cleaned[key] = clean(value)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # Locked: the state and the number of live tokens hold until the token is made.
        target = User.objects.select_for_update().get(pk=target.pk)
        if not target.is_active or target.state != User.State.ACTIVE:
            raise NotActive()
        live = PersonalAccessToken.objects.filter(
            user=target, revoked_at__isnull=True, expires_at__gt=timezone.now()
        ).count()
        if live >= settings.PERSONAL_ACCESS_TOKENS_PER_USER:
            raise TooManyTokens(
                _("This account has as many tokens as an account may have. Revoke one first.")
            )
        new = token_service.token_create(ctx=ctx, user=target, created_by=ctx.user, **cleaned)
        # Like every staff action's message: neither the staff member's address nor device.
        notify(
            ctx=None,
            user=target,
            event="token_created",
            context={"name": new.token.name, "expires_at": new.token.expires_at},
        )
    return new


def token_revoke_for_user(*, ctx: Actor, pk: Any) -> PersonalAccessToken:
    """Staff revoke one of the tokens of the account ``ctx`` acts on (permission
    ``accounts.delete_personalaccesstoken``; the same guard rails as making one).
    Another account's token, or an unknown id, is ``AccessDenied`` (404); a token
    already dead is returned unchanged. Audited; the user is told."""
    target = staff_target(ctx, REVOKE_FOR_USER_PERMISSION)
    key = int_pk(pk)
    token = PersonalAccessToken.objects.filter(user=target, pk=key).first() if key else None
    if token is None:
        raise AccessDenied()
    token.user = target
    with transaction.atomic():
        if token_service.token_revoke(ctx=ctx, token=token):
            notify(ctx=None, user=target, event="token_revoked", context={"name": token.name})
    return token
