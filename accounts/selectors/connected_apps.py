"""The apps a user allowed to act for them, as the settings page, the Account API
and the data export list them: the app's name, what it may do in plain words, and
when it was first and last used. Never a token."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from allauth.idp.oidc.models import Client
from django.db.models import QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.models import AppGrant, OAuthScope, User
from accounts.prepared import prepared

# The order the provider lists scopes in (sign-in facts first, then reading, then changing).
SCOPE_ORDER = {scope.value: index for index, scope in enumerate(OAuthScope)}
_LABELS = {scope.value: scope.label for scope in OAuthScope}


@prepared
def _grants(user_id: int) -> QuerySet[AppGrant]:
    """The user's grants with their app's id and name, by app name."""
    fields = ("id", "client_id", "client__name", "scopes", "created_at", "last_used_at")
    return (
        AppGrant.objects.filter(user_id=user_id).order_by("client__name", "id").values_list(*fields)
    )


def _app_name(name: str, client_id: str) -> str | Promise:
    return name or _("Unnamed app (%(id)s)") % {"id": client_id}


def app_name(client: Client) -> str | Promise:
    """An app's name as users read it (an app registered without one is named so)."""
    return _app_name(client.name, client.pk)


@dataclass(frozen=True)
class ScopeShown:
    scope: str
    label: str | Promise


def scopes_shown(scopes: Iterable[str]) -> list[ScopeShown]:
    """Each scope with its plain words, in the order the provider lists them; a scope
    the portal no longer knows keeps its name."""
    unique = sorted(
        set(scopes), key=lambda scope: (SCOPE_ORDER.get(scope, len(SCOPE_ORDER)), scope)
    )
    return [ScopeShown(scope, _LABELS.get(scope, scope)) for scope in unique]


@dataclass(frozen=True)
class ConnectedApp:
    id: int
    name: str | Promise
    client_id: str
    scopes: list[ScopeShown]
    first_used_at: datetime
    last_used_at: datetime | None


def connected_app(grant: AppGrant) -> ConnectedApp:
    return ConnectedApp(
        id=grant.pk,
        name=app_name(grant.client),
        client_id=grant.client.pk,
        scopes=scopes_shown(grant.scopes or []),
        first_used_at=grant.created_at,
        last_used_at=grant.last_used_at,
    )


def user_connected_apps(*, user: User) -> list[ConnectedApp]:
    """The apps the user allowed, by name (prepared: ``accounts.prepared``)."""
    return [
        ConnectedApp(
            id=pk,
            name=_app_name(name, client_id),
            client_id=client_id,
            scopes=scopes_shown(scopes or []),
            first_used_at=created_at,
            last_used_at=last_used_at,
        )
        for pk, client_id, name, scopes, created_at, last_used_at in _grants(user.pk)
    ]
