"""Shapes of the Management API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema

from accounts.models import User
from accounts.selectors.users import users_annotated


class ManagedUser(Schema):
    id: int
    username: str
    email: str
    phone: str
    display_name: str
    given_name: str
    family_name: str
    language: str
    time_zone: str
    state: str
    state_reason: str
    suspended_until: datetime | None
    deletion_scheduled_for: datetime | None
    is_staff: bool
    is_superuser: bool
    has_second_factor: bool
    date_joined: datetime
    last_login: datetime | None


def managed_user_data(user: User) -> dict[str, Any]:
    """``user`` must come from ``users_annotated`` (``has_second_factor``)."""
    return {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "phone": user.phone,
        "display_name": user.display_name,
        "given_name": user.first_name,
        "family_name": user.last_name,
        "language": user.language,
        "time_zone": user.time_zone,
        "state": user.state,
        "state_reason": user.state_reason,
        "suspended_until": user.suspended_until,
        "deletion_scheduled_for": user.deletion_scheduled_for,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "has_second_factor": bool(user.has_second_factor),  # type: ignore[attr-defined]
        "date_joined": user.date_joined,
        "last_login": user.last_login,
    }


def managed_user(pk: int) -> dict[str, Any]:
    """The account's data as it is now (after a change), with its second factor."""
    return managed_user_data(users_annotated(User.objects.filter(pk=pk)).get())
