"""Profile writes: names, language and time zone, avatar, username."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from accounts.actor import Actor
from accounts.models import User
from accounts.services.audit import Action, audit_record

PROFILE_FIELDS = frozenset({"display_name", "first_name", "last_name", "language", "time_zone"})


class UsernameTaken(Exception):
    pass


@transaction.atomic
def profile_update(*, ctx: Actor | None, user: User, changes: dict[str, Any]) -> list[str]:
    """Saves the given profile fields; returns the names of those that changed."""
    unknown = set(changes) - PROFILE_FIELDS
    if unknown:
        raise ValueError(f"not profile fields: {sorted(unknown)}")
    changed = [name for name, value in changes.items() if getattr(user, name) != value]
    if not changed:
        return []
    before = {name: getattr(user, name) for name in changed}
    for name in changed:
        setattr(user, name, changes[name])
    user.save(update_fields=changed)
    audit_record(
        ctx=ctx,
        action=Action.PROFILE_UPDATED,
        subject=user,
        data={"fields": changed, "before": before, "after": {n: changes[n] for n in changed}},
    )
    return changed


def _delete_file_on_commit(name: str | None) -> None:
    if not name:
        return
    storage = User._meta.get_field("avatar").storage
    transaction.on_commit(lambda: storage.delete(name))


@transaction.atomic
def avatar_set(*, ctx: Actor | None, user: User, image: ContentFile) -> None:
    """Stores an image already decoded and re-encoded by ``accounts.images``."""
    old = user.avatar.name
    user.avatar.save(f"{uuid.uuid4().hex}.webp", image, save=False)
    new = user.avatar.name or ""
    try:
        user.save(update_fields=["avatar"])
        audit_record(ctx=ctx, action=Action.AVATAR_CHANGED, subject=user)
    except Exception:
        # The row was not saved: the new file must not stay behind.
        user.avatar.storage.delete(new)
        raise
    _delete_file_on_commit(old)


@transaction.atomic
def avatar_remove(*, ctx: Actor | None, user: User) -> bool:
    old = user.avatar.name
    if not old:
        return False
    user.avatar = None
    user.save(update_fields=["avatar"])
    audit_record(ctx=ctx, action=Action.AVATAR_REMOVED, subject=user)
    _delete_file_on_commit(old)
    return True


@transaction.atomic
def username_change(*, ctx: Actor | None, user: User, username: str) -> None:
    """``username`` is already normalised and validated (``accounts.usernames``)."""
    old = user.username
    user.username = username
    try:
        with transaction.atomic():
            user.save(update_fields=["username"])
    except IntegrityError as exc:  # taken between the form's check and the save
        user.username = old
        raise UsernameTaken from exc
    audit_record(
        ctx=ctx,
        action=Action.USERNAME_CHANGED,
        subject=user,
        data={"before": old, "after": username},
    )
