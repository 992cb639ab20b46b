"""Connected apps: an OAuth app a user allowed to act for them (``accounts.oauth``).

- ``app_connect``: the app got its first tokens for the user; audited and told to
  the user. The app's token request carries no policy check of its own: the
  authorize step the user went through checked the policy (``connected_apps``
  editable) and refused staff impersonating the user, and an app's refresh keeps
  working while the section is read-only.
- ``app_revoke``: the user takes an app's access back; its tokens die at once.
  Like revoking a personal access token, it needs a recent re-authentication and
  is refused while staff impersonate the user: the same rule for every credential
  the user can end from the settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from allauth.idp.oidc.models import Client
from django.db import transaction

from accounts.access import access_own_app_grant
from accounts.actor import Actor
from accounts.flows import gate
from accounts.models import AppGrant
from accounts.notifications import notify
from accounts.oauth import app_grant_revoke, grant_record
from accounts.selectors.connected_apps import app_name, scopes_shown

FIELD = "connected_apps"


def app_connect(*, ctx: Actor, client: Client, scopes: Iterable[str]) -> AppGrant:
    """Records that ``client`` holds tokens for ``ctx.target`` with ``scopes``; the
    first time, the user is told which app and what it may do."""
    user = ctx.target
    with transaction.atomic():
        grant, created = grant_record(ctx=ctx, user=user, client=client, scopes=scopes)
        if created:
            notify(
                ctx=ctx,
                user=user,
                event="app_connected",
                context={
                    "app": app_name(client),
                    "scopes": [shown.label for shown in scopes_shown(grant.scopes)],
                },
            )
    return grant


def app_revoke(*, ctx: Actor, pk: Any) -> AppGrant:
    """Ends the access of one of the user's apps: its access and refresh tokens
    die, and it leaves the list. Someone else's grant, or an unknown id, is
    ``AccessDenied`` (404)."""
    gate.check(ctx, field=FIELD, reauth=True, sensitive=True)
    grant = access_own_app_grant(ctx, pk)
    with transaction.atomic():
        if app_grant_revoke(ctx=ctx, grant=grant):
            notify(
                ctx=ctx,
                user=grant.user,
                event="app_revoked",
                context={"app": app_name(grant.client)},
            )
    return grant
