"""Staff registering OAuth apps: who may create, change, give a new secret,
revoke the tokens of and delete an app (``accounts.services.oauth_apps`` writes
and audits).

- Django's model permissions on allauth's ``Client`` gate each operation (add,
  change — a new secret and revoking tokens included —, delete).
- Nobody hands a machine client more than they hold: its service account's
  groups, within the scopes it may ask for, carry permissions; whoever creates or
  changes a machine client, or gets its secret, must hold every one of them
  themselves (superusers hold all). Otherwise a staff member could mint a
  credential stronger than their own account.
"""

from __future__ import annotations

from collections.abc import Iterable

from allauth.idp.oidc.models import Client
from django.contrib.auth.models import Group, Permission
from django.db.models import Q
from django.utils.translation import gettext as _

from accounts.access import staff_with_permission
from accounts.actor import Actor
from accounts.flows.errors import AccessDenied, FlowError
from accounts.models import User
from accounts.oauth import scope_permissions
from accounts.services import oauth_apps as service
from accounts.services.oauth_apps import AppSettings, NewApp

ADD = "allauth_idp_oidc.add_client"
CHANGE = "allauth_idp_oidc.change_client"
DELETE = "allauth_idp_oidc.delete_client"
VIEW = "allauth_idp_oidc.view_client"


class NoSecret(FlowError):
    code = "oauth_app.public"
    status = 409

    def __init__(self) -> None:
        super().__init__(_("A public app has no secret: it proves itself with PKCE alone."))


def _names(rows: Iterable[tuple[str, str]]) -> set[str]:
    return {f"{app_label}.{codename}" for app_label, codename in rows}


def machine_permissions(*, groups: Iterable[Group], scopes: Iterable[str]) -> set[str]:
    """What a machine client can do: its groups' permissions that its scopes open."""
    held = _names(
        Permission.objects.filter(group__in=list(groups)).values_list(
            "content_type__app_label", "codename"
        )
    )
    return held & scope_permissions(scopes)


def _account_permissions(account: User, scopes: Iterable[str]) -> set[str]:
    held = _names(
        Permission.objects.filter(Q(group__user=account) | Q(user=account)).values_list(
            "content_type__app_label", "codename"
        )
    )
    return held & scope_permissions(scopes)


def permissions_missing(staff: User | None, permissions: Iterable[str]) -> list[str]:
    """Those of ``permissions`` that ``staff`` does not hold."""
    if staff is None:
        return sorted(permissions)
    return sorted(p for p in permissions if not staff.has_perm(p))


def not_held_message(missing: list[str]) -> str:
    return _(
        "You can give a machine client only permissions you hold yourself. Not yours: "
        "%(permissions)s."
    ) % {"permissions": ", ".join(missing)}


def _require_held(staff: User, permissions: Iterable[str]) -> None:
    missing = permissions_missing(staff, permissions)
    if missing:
        raise AccessDenied(not_held_message(missing), staff=True)


def oauth_app_create(
    *, ctx: Actor, client: Client, kind: str, public: bool, settings: AppSettings
) -> NewApp:
    staff = staff_with_permission(ctx, ADD)
    if kind == service.MACHINE:
        _require_held(
            staff, machine_permissions(groups=settings.groups or [], scopes=settings.scopes)
        )
    return service.oauth_app_create(
        ctx=ctx, client=client, kind=kind, public=public, settings=settings
    )


def oauth_app_update(*, ctx: Actor, client: Client, settings: AppSettings) -> dict[str, object]:
    staff = staff_with_permission(ctx, CHANGE)
    account = service.service_account(client)
    if account is not None:
        groups = settings.groups if settings.groups is not None else account.groups.all()
        _require_held(staff, machine_permissions(groups=groups, scopes=settings.scopes))
    return service.oauth_app_update(ctx=ctx, client=client, settings=settings)


def oauth_app_secret_rotate(*, ctx: Actor, client: Client) -> str:
    """A new secret, to show once. Whoever gets a machine client's secret can act
    as it: they must hold what it can do."""
    staff = staff_with_permission(ctx, CHANGE)
    if client.type != Client.Type.CONFIDENTIAL:
        raise NoSecret()
    account = service.service_account(client)
    if account is not None:
        _require_held(staff, _account_permissions(account, client.get_scopes()))
    return service.oauth_app_secret_rotate(ctx=ctx, client=client)


def oauth_app_tokens_revoke(*, ctx: Actor, client: Client) -> int:
    staff_with_permission(ctx, CHANGE)
    return service.oauth_app_tokens_revoke(ctx=ctx, client=client)


def oauth_app_delete(*, ctx: Actor, client: Client) -> None:
    staff_with_permission(ctx, DELETE)
    service.oauth_app_delete(ctx=ctx, client=client)
