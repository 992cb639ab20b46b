"""Who may touch which object: the one place that fetches an object for an actor.

Each rule returns the object or raises ``AccessDenied``: a user asking for
someone else's session, key or linked account gets the same answer as for one
that does not exist (404); staff without the permission get a 403.
"""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django_otp_webauthn.models import WebAuthnCredential

from accounts.actor import Actor
from accounts.flows.errors import AccessDenied
from accounts.models import AppGrant, PersonalAccessToken, User


def _own(ctx: Actor) -> User:
    if ctx.user is None:
        raise AccessDenied()
    return ctx.user


def access_own_session(ctx: Actor, pk: Any) -> UserSession:
    """One of the user's own sessions; those opened by staff impersonating the user
    are not the user's to see or end."""
    session = UserSession.objects.filter(user=_own(ctx), pk=pk).first()
    if session is None or (session.data or {}).get("impersonated_by"):
        raise AccessDenied()
    return session


def access_own_passkey(ctx: Actor, pk: Any) -> WebAuthnCredential:
    credential = WebAuthnCredential.objects.filter(user=_own(ctx), pk=pk).first()
    if credential is None:
        raise AccessDenied()
    return credential


def access_own_social_account(ctx: Actor, pk: Any) -> SocialAccount:
    account = SocialAccount.objects.filter(user=_own(ctx), pk=pk).first()
    if account is None:
        raise AccessDenied()
    return account


def access_own_token(ctx: Actor, pk: Any) -> PersonalAccessToken:
    """One of the user's own personal access tokens (revoked ones included)."""
    key = int_pk(pk)
    token = PersonalAccessToken.objects.filter(user=_own(ctx), pk=key).first() if key else None
    if token is None:
        raise AccessDenied()
    return token


def access_own_app_grant(ctx: Actor, pk: Any) -> AppGrant:
    """One of the apps the user allowed (its app loaded)."""
    user = _own(ctx)
    key = int_pk(pk)
    grant = (
        AppGrant.objects.select_related("client").filter(user=user, pk=key).first()
        if key is not None
        else None
    )
    if grant is None:
        raise AccessDenied()
    grant.user = user
    return grant


def int_pk(pk: Any) -> int | None:
    """``pk`` as a primary key the database can compare, or None: a number too big
    for a 64-bit column is nobody's object, not a database error."""
    try:
        key = int(pk)
    except (TypeError, ValueError):
        return None
    return key if 0 < key < 2**63 else None


def staff_with_permission(ctx: Actor, permission: str) -> User:
    """The staff member acting, while active, staff and holding ``permission``
    (``app.codename``); else a 403."""
    staff = ctx.user
    if staff is None or not staff.is_active or not staff.is_staff or not staff.has_perm(permission):
        raise AccessDenied(staff=True)
    return staff


def access_user_for_staff(ctx: Actor, pk: Any, permission: str) -> User:
    """A user a staff member may act on with ``permission`` (``app.codename``)."""
    staff_with_permission(ctx, permission)
    try:
        # With its machine client (none for a person): the rules that keep staff off
        # service accounts then ask no more of the database.
        user = User.objects.select_related("machine_client").filter(pk=int(pk)).first()
    except (TypeError, ValueError):
        user = None
    if user is None:
        raise AccessDenied()
    return user


def staff_holds_any(user: Any, permissions: tuple[str, ...]) -> bool:
    """An active staff member holding one of ``permissions`` (``app.codename``):
    the back-office's rule for reading a page (Django's admin lets "view" or
    "change" read)."""
    return bool(
        user is not None
        and user.is_active
        and user.is_staff
        and any(user.has_perm(permission) for permission in permissions)
    )


def access_for_staff(ctx: Actor, permissions: tuple[str, ...]) -> User:
    """The staff member acting, if they hold one of ``permissions``; 403 otherwise."""
    if ctx.user is None or not staff_holds_any(ctx.user, permissions):
        raise AccessDenied(staff=True)
    return ctx.user
