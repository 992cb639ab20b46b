"""Personal access tokens: a user makes them for their own programs (Account API)
and revokes them. Both are sensitive: a recent re-authentication, never while
staff impersonate the user. Each is audited and told to the user."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.access import access_own_token
from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows.errors import FlowError
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

    def __init__(self) -> None:
        super().__init__(
            _("You have as many tokens as an account may have. Revoke one you no longer use first.")
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
    return expires_at


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
