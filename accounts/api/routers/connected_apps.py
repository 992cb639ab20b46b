"""The OAuth apps the user allowed to act for them: list, revoke (the app's tokens
die at once). Revoking needs a verification, as on the settings page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from accounts.api.auth import ACCOUNT_AUTH, api_ctx, refuse_apps
from accounts.api.forms import door
from accounts.api.schemas import COMMON_ERRORS
from accounts.flows import connected_apps as flows
from accounts.models import User
from accounts.selectors import connected_apps as selectors

router = Router(tags=["my-account"], auth=ACCOUNT_AUTH)

FIELD = flows.FIELD


class AppScope(Schema):
    scope: str = Field(description="The scope's name, e.g. `account:read`.")
    description: str = Field(description="What it lets the app do, in plain words.")


class ConnectedApp(Schema):
    id: int
    name: str
    client_id: str
    scopes: list[AppScope]
    first_used_at: datetime = Field(description="When the app first got access.")
    last_used_at: datetime | None = Field(description="When it last used the account.")


def app_data(app: selectors.ConnectedApp) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": str(app.name),
        "client_id": app.client_id,
        "scopes": [{"scope": s.scope, "description": str(s.label)} for s in app.scopes],
        "first_used_at": app.first_used_at,
        "last_used_at": app.last_used_at,
    }


@router.get("/connected-apps", response={200: list[ConnectedApp], **COMMON_ERRORS})
def connected_apps_list(request: HttpRequest) -> Any:
    """The apps the user allowed to use their account, by name."""
    ctx = api_ctx(request)
    refuse_apps(request)
    door(request, ctx, field=FIELD, edit=False)
    user: User = request.user  # type: ignore[assignment]
    return [app_data(app) for app in selectors.user_connected_apps(user=user)]


@router.delete("/connected-apps/{app_id}", response={200: ConnectedApp, **COMMON_ERRORS})
def connected_app_revoke(request: HttpRequest, app_id: int) -> Any:
    """Revokes an app's access: its access and refresh tokens stop working at once,
    and it leaves the list. `app_id` is the `id` the list gives (not the
    `client_id`). Returns the app as it was. Needs a verification."""
    ctx = api_ctx(request)
    refuse_apps(request)
    door(request, ctx, field=FIELD, reauth=True, sensitive=True)
    return app_data(selectors.connected_app(flows.app_revoke(ctx=ctx, pk=app_id)))
