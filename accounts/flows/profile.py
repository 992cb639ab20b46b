"""The profile: display name, personal details, username and picture."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.files.base import File
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.actor import Actor
from accounts.flows import gate
from accounts.flows.errors import FlowError
from accounts.images import process_avatar
from accounts.limits import limit_consume
from accounts.services import profile as profile_service
from accounts.usernames import normalize_username, validate_username

DETAILS_FIELDS = ("first_name", "last_name", "language", "time_zone")


class UsernameTaken(FlowError):
    code = "username.taken"
    status = 409

    def __init__(self) -> None:
        super().__init__(_("This username is taken. Please choose another."))


@dataclass(frozen=True)
class ProfileChange:
    """The names of the fields that changed (none when the values were the same)."""

    changed: tuple[str, ...]


def _update(ctx: Actor, changes: dict[str, Any]) -> ProfileChange:
    with transaction.atomic():
        changed = profile_service.profile_update(ctx=ctx, user=ctx.target, changes=changes)
    return ProfileChange(changed=tuple(changed))


def name_update(*, ctx: Actor, display_name: str) -> ProfileChange:
    gate.check(ctx, field="name")
    return _update(ctx, {"display_name": display_name})


def details_update(*, ctx: Actor, changes: dict[str, Any]) -> ProfileChange:
    """Given and family names, language, time zone (any of them)."""
    unknown = set(changes) - set(DETAILS_FIELDS)
    if unknown:
        raise ValueError(f"not personal details: {sorted(unknown)}")
    gate.check(ctx, field="profile")
    return _update(ctx, changes)


def username_change(*, ctx: Actor, username: str) -> str:
    """The username, normalised and checked against the rules (``ValidationError``);
    returns the new one. Needs a recent re-authentication."""
    gate.check(ctx, field="username", reauth=True, sensitive=True)
    username = normalize_username(username)
    validate_username(username)
    with transaction.atomic():
        try:
            profile_service.username_change(ctx=ctx, user=ctx.target, username=username)
        except profile_service.UsernameTaken as exc:
            raise UsernameTaken() from exc
    return username


def avatar_upload(*, ctx: Actor, image: File) -> None:
    """``image`` is the uploaded file: it is decoded and re-encoded here
    (``accounts.images.process_avatar``, ``ValidationError`` when it is refused),
    after the rate limit, so refused files count too: decoding is the costly part."""
    gate.check(ctx, field="avatar")
    limit_consume(ctx, action="portal_avatar_upload")
    image = process_avatar(image, size=image.size)
    with transaction.atomic():
        profile_service.avatar_set(ctx=ctx, user=ctx.target, image=image)


def avatar_remove(*, ctx: Actor) -> bool:
    """Whether there was a picture to remove."""
    gate.check(ctx, field="avatar")
    with transaction.atomic():
        return profile_service.avatar_remove(ctx=ctx, user=ctx.target)
