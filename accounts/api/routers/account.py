"""The account itself: read it, change the display name, username and personal
details, and the picture."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from ninja import File, Router, Schema, UploadedFile

from accounts.api.auth import ACCOUNT_AUTH, api_ctx
from accounts.api.forms import door, user_copy, valid
from accounts.api.schemas import COMMON_ERRORS, Error, Input
from accounts.flows import profile as flows
from accounts.forms import AvatarForm, DetailsForm, NameForm, UsernameForm
from accounts.models import User
from accounts.policy import Policy, get_policy, require_readable
from accounts.selectors.mfa import has_real_factor

router = Router(tags=["my-account"], auth=ACCOUNT_AUTH)


class Account(Schema):
    """The account. A field whose policy is ``off`` is left out."""

    id: int
    created_at: datetime
    username: str | None = None
    display_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    language: str | None = None
    time_zone: str | None = None
    avatar_url: str | None = None
    email: str | None = None
    phone: str | None = None
    second_factor: bool | None = None


def account_data(request: HttpRequest, user: User, policy: Policy) -> dict[str, Any]:
    data: dict[str, Any] = {"id": user.pk, "created_at": user.date_joined}
    if policy.visible("username"):
        data["username"] = user.username
    if policy.visible("name"):
        data["display_name"] = user.display_name
    if policy.visible("profile"):
        data.update(
            given_name=user.first_name,
            family_name=user.last_name,
            language=user.language,
            time_zone=user.time_zone,
        )
    if policy.visible("avatar"):
        data["avatar_url"] = request.build_absolute_uri(user.avatar.url) if user.avatar else ""
    if policy.visible("email"):
        data["email"] = user.email
    if policy.visible("phone"):
        data["phone"] = user.phone
    if policy.visible("mfa") or policy.visible("passkeys"):
        data["second_factor"] = has_real_factor(user)
    return data


@router.get("", response={200: Account, **COMMON_ERRORS}, exclude_unset=True)
def my_account(request: HttpRequest) -> Any:
    api_ctx(request)
    policy = get_policy(request)
    require_readable(policy)
    return account_data(request, request.user, policy)  # type: ignore[arg-type]


class AccountChange(Input):
    display_name: str | None = None
    username: str | None = None


@router.patch("", response={200: Account, 409: Error, **COMMON_ERRORS}, exclude_unset=True)
def my_account_update(request: HttpRequest, payload: AccountChange) -> Any:
    """The display name, the username (sensitive: needs a verification), or both:
    all or nothing."""
    ctx = api_ctx(request)
    user: User = request.user  # type: ignore[assignment]
    policy = get_policy(request)
    changes = payload.model_dump(exclude_unset=True)
    if "username" in changes:
        door(request, ctx, field="username", reauth=True, sensitive=True)
    if "display_name" in changes:
        door(request, ctx, field="name")
    cleaned: dict[str, Any] = {}
    if changes.get("username") is not None:
        cleaned["username"] = valid(
            UsernameForm({"username": changes["username"]}, user=user, policy=policy)
        )["username"]
    if "display_name" in changes:
        cleaned["display_name"] = valid(
            NameForm(
                {"display_name": changes["display_name"] or ""},
                instance=user_copy(user),
                policy=policy,
            )
        )["display_name"]
    # Both or neither (one transaction only when there are two changes).
    with transaction.atomic() if len(cleaned) > 1 else nullcontext():
        if "username" in cleaned:
            flows.username_change(ctx=ctx, username=cleaned["username"])
        if "display_name" in cleaned:
            flows.name_update(ctx=ctx, display_name=cleaned["display_name"])
    # The flows changed ``ctx.target``, which is ``request.user``.
    return account_data(request, user, policy)


class ProfileChange(Input):
    given_name: str | None = None
    family_name: str | None = None
    language: str | None = None
    time_zone: str | None = None


PROFILE_FIELDS = {
    "given_name": "first_name",
    "family_name": "last_name",
    "language": "language",
    "time_zone": "time_zone",
}


@router.patch("/profile", response={200: Account, **COMMON_ERRORS}, exclude_unset=True)
def my_profile_update(request: HttpRequest, payload: ProfileChange) -> Any:
    """Given and family names, language (``""``: the browser's), time zone; the
    fields not sent are kept."""
    ctx = api_ctx(request)
    user: User = request.user  # type: ignore[assignment]
    policy = get_policy(request)
    door(request, ctx, field="profile")
    sent = {PROFILE_FIELDS[k]: v for k, v in payload.model_dump(exclude_unset=True).items()}
    data = {name: getattr(user, name) for name in PROFILE_FIELDS.values()}
    data.update({k: "" if v is None else v for k, v in sent.items()})
    cleaned = valid(
        DetailsForm(data, instance=user_copy(user), policy=policy),
        names={form_name: api_name for api_name, form_name in PROFILE_FIELDS.items()},
    )
    flows.details_update(ctx=ctx, changes={name: cleaned[name] for name in sent})
    # The flows changed ``ctx.target``, which is ``request.user``.
    return account_data(request, user, policy)


@router.put("/avatar", response={200: Account, **COMMON_ERRORS}, exclude_unset=True)
def my_avatar_upload(request: HttpRequest, avatar: File[UploadedFile]) -> Any:
    """A PNG, JPEG or WebP picture (multipart field ``avatar``), re-encoded and
    cropped to a square."""
    ctx = api_ctx(request)
    policy = get_policy(request)
    door(request, ctx, field="avatar")
    valid(AvatarForm(files={"avatar": avatar}, policy=policy))
    flows.avatar_upload(ctx=ctx, image=avatar)
    user: User = request.user  # type: ignore[assignment]
    # The flows changed ``ctx.target``, which is ``request.user``.
    return account_data(request, user, policy)


@router.delete("/avatar", response={200: Account, **COMMON_ERRORS}, exclude_unset=True)
def my_avatar_remove(request: HttpRequest) -> Any:
    ctx = api_ctx(request)
    flows.avatar_remove(ctx=ctx)
    return account_data(request, request.user, get_policy(request))  # type: ignore[arg-type]
