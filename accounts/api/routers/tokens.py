"""The user's personal access tokens: list, create (the secret is returned once),
revoke. Creating and revoking need a verification, as on the settings page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from accounts.api.auth import ACCOUNT_AUTH, api_ctx, refuse_apps
from accounts.api.forms import door
from accounts.api.schemas import COMMON_ERRORS, Error, Input
from accounts.flows import tokens as flows
from accounts.models import PersonalAccessToken, User
from accounts.selectors.tokens import token_shown_prefix, user_tokens

router = Router(tags=["my-account"], auth=ACCOUNT_AUTH)

FIELD = flows.FIELD


class Token(Schema):
    id: int
    name: str
    prefix: str = Field(description="The token's first characters, e.g. `pat_AbCd1234…`.")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewToken(Token):
    token: str = Field(description="The full token, shown this once: it is not stored.")


def token_data(token: PersonalAccessToken) -> dict[str, Any]:
    return {
        "id": token.pk,
        "name": token.name,
        "prefix": token_shown_prefix(token),
        "scopes": list(token.scopes),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


@router.get("/tokens", response={200: list[Token], **COMMON_ERRORS})
def tokens_list(request: HttpRequest) -> Any:
    """The live tokens, and those revoked or expired in the last 30 days, newest first."""
    ctx = api_ctx(request)
    refuse_apps(request)
    door(request, ctx, field=FIELD, edit=False)
    user: User = request.user  # type: ignore[assignment]
    return [token_data(token) for token in user_tokens(user=user)]


Scope = Annotated[str, Field(max_length=50)]


class TokenIn(Input):
    name: str = Field(max_length=300)
    scopes: list[Scope] = Field(max_length=10, description="`account:read`, `account:write`.")
    expires_at: datetime = Field(description="One year from now at most.")


@router.post("/tokens", response={201: NewToken, 409: Error, **COMMON_ERRORS})
def token_create(request: HttpRequest, payload: TokenIn) -> Any:
    """A new token. Its full text is in `token`, this once. Needs a verification."""
    ctx = api_ctx(request)
    refuse_apps(request)
    door(request, ctx, field=FIELD, reauth=True, sensitive=True)
    new = flows.token_create(
        ctx=ctx, name=payload.name, scopes=payload.scopes, expires_at=payload.expires_at
    )
    return Status(201, {**token_data(new.token), "token": new.secret})


@router.delete("/tokens/{token_id}", response={200: Token, **COMMON_ERRORS})
def token_revoke(request: HttpRequest, token_id: int) -> Any:
    """Revokes one of the user's tokens: it stops working at once. Needs a verification."""
    ctx = api_ctx(request)
    refuse_apps(request)
    door(request, ctx, field=FIELD, reauth=True, sensitive=True)
    return token_data(flows.token_revoke(ctx=ctx, pk=token_id))
