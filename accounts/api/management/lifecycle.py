"""The user lifecycle: create, edit, suspend and restore, schedule or cancel the
deletion, delete at once. Each endpoint answers as the back-office's page for the
same action: the same permission, guard rails (nobody acts on themselves; only
superusers act on staff and superusers), form, flow and refusals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Status

from accounts.access import access_user_for_staff, staff_with_permission
from accounts.actor import Actor
from accounts.admin.forms import reason_form, suspend_form
from accounts.api.forms import user_copy, valid
from accounts.api.management.auth import MANAGEMENT_AUTH, staff_ctx
from accounts.api.management.schemas import ManagedUser, managed_user
from accounts.api.schemas import COMMON_ERRORS, Done, Error, Input
from accounts.flows import moderation, staff_users
from accounts.models import User
from accounts.staff_forms import StaffUserCreateForm, StaffUserUpdateForm

router = Router(tags=["management"], auth=MANAGEMENT_AUTH)

# The API's names of the fields whose form names differ.
API_NAMES = {"first_name": "given_name", "last_name": "family_name"}
FORM_NAMES = {api: form for form, api in API_NAMES.items()}

# The staff actions that change the account's state: a wrong state is a 409.
STATE_CHANGE = {200: ManagedUser, **COMMON_ERRORS, 409: Error}


def _target(request: HttpRequest, user_id: int, permission: str) -> tuple[User, Actor]:
    """The account and the staff member acting on it, checked as the back-office's
    action pages check them: the permission (403), the account (404), then whether
    staff may act on it (403)."""
    target = access_user_for_staff(staff_ctx(request), user_id, f"accounts.{permission}")
    ctx = staff_ctx(request, subject=target)
    return moderation.staff_target(ctx, permission), ctx


# --- Create and edit -------------------------------------------------------------------


class UserCreate(Input):
    username: str = Field(max_length=150)
    email: str = Field(max_length=254)
    password: str | None = Field(default=None, max_length=4096)
    send_invitation: bool = False
    display_name: str = Field(default="", max_length=150)
    given_name: str = Field(default="", max_length=150)
    family_name: str = Field(default="", max_length=150)
    language: str = Field(default="", max_length=8)
    time_zone: str = Field(default="UTC", max_length=64)


@router.post("/users", response={201: ManagedUser, **COMMON_ERRORS})
def user_create(request: HttpRequest, payload: UserCreate) -> Any:
    """A new account (needs the "add user" permission), with a password checked by
    the password rules, or none: ``send_invitation`` then sends the user how to
    choose one (the password reset page). Its email address is the primary one,
    unverified until the user proves it. A username or address another account
    has is a 422 on the field."""
    ctx = staff_ctx(request)
    staff_with_permission(ctx, "accounts.add_user")
    data = payload.model_dump()
    data["password"] = data["password"] or ""
    form = StaffUserCreateForm({FORM_NAMES.get(k, k): v for k, v in data.items()})
    cleaned = valid(form, names=API_NAMES)
    user = staff_users.create_user_by_staff(
        ctx=ctx,
        user=form.instance,
        password=cleaned["password"],
        send_invitation=cleaned["send_invitation"],
    )
    return Status(201, managed_user(user.pk))


class UserUpdate(Input):
    username: str | None = Field(default=None, max_length=150)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    display_name: str | None = Field(default=None, max_length=150)
    given_name: str | None = Field(default=None, max_length=150)
    family_name: str | None = Field(default=None, max_length=150)
    language: str | None = Field(default=None, max_length=8)
    time_zone: str | None = Field(default=None, max_length=64)


@router.patch("/users/{user_id}", response={200: ManagedUser, **COMMON_ERRORS})
def user_update(request: HttpRequest, user_id: int, payload: UserUpdate) -> Any:
    """Profile fields, the username, the email address and the phone number (``""``:
    none); the fields not sent are kept (needs the "change user" permission; staff
    and superusers are edited by superusers only). Staff set an address or a number
    unverified, and the user is told (the old address too); their own are changed
    on their settings pages."""
    ctx = staff_ctx(request)
    target = access_user_for_staff(ctx, user_id, "accounts.change_user")
    ctx = staff_ctx(request, subject=target)
    sent = {
        FORM_NAMES.get(k, k): "" if v is None else v
        for k, v in payload.model_dump(exclude_unset=True).items()
    }
    # The refusals first, as on the back-office's change page.
    staff_users.staff_editable(ctx, contact=bool({"email", "phone"} & set(sent)))
    form_data = {name: getattr(target, name) for name in StaffUserUpdateForm.Meta.fields}
    form_data.update(sent)
    cleaned = valid(StaffUserUpdateForm(form_data, instance=user_copy(target)), names=API_NAMES)
    staff_users.update_user_by_staff(ctx=ctx, changes={name: cleaned[name] for name in sent})
    return managed_user(target.pk)


# --- Suspension -------------------------------------------------------------------------


class Suspension(Input):
    reason: str = Field(max_length=500)
    until: datetime | None = None


@router.post("/users/{user_id}/suspension", response=STATE_CHANGE)
def user_suspend(request: HttpRequest, user_id: int, payload: Suspension) -> Any:
    """Suspends an active account with a reason (``until``: a time in the future
    when the suspension ends by itself); every session and token of the account
    ends at once and the user is told."""
    target, ctx = _target(request, user_id, "suspend_user")
    cleaned = valid(suspend_form(payload.model_dump()))
    moderation.suspend_user(ctx=ctx, reason=cleaned["reason"], until=cleaned["until"])
    return managed_user(target.pk)


@router.delete("/users/{user_id}/suspension", response=STATE_CHANGE)
def user_unsuspend(request: HttpRequest, user_id: int) -> Any:
    """Lifts the suspension (409 ``wrong_state`` when the account is not suspended)."""
    target, ctx = _target(request, user_id, "suspend_user")
    moderation.restore_user(ctx=ctx, from_state=User.State.SUSPENDED)
    return managed_user(target.pk)


# --- Deletion ---------------------------------------------------------------------------


class Deletion(Input):
    reason: str = Field(max_length=500)


@router.post("/users/{user_id}/deletion", response=STATE_CHANGE)
def user_deletion_schedule(request: HttpRequest, user_id: int, payload: Deletion) -> Any:
    """Schedules the deletion of an active account after the grace period; every
    session and token of the account ends at once and the user is told."""
    target, ctx = _target(request, user_id, "schedule_user_deletion")
    cleaned = valid(reason_form(payload.model_dump()))
    moderation.schedule_user_deletion(ctx=ctx, reason=cleaned["reason"])
    return managed_user(target.pk)


@router.delete("/users/{user_id}/deletion", response=STATE_CHANGE)
def user_deletion_cancel(request: HttpRequest, user_id: int) -> Any:
    """Cancels a scheduled deletion, as the back-office's "restore" does (with the
    same permission, "suspend and restore users"); 409 ``wrong_state`` when none
    is scheduled."""
    target, ctx = _target(request, user_id, "suspend_user")
    moderation.restore_user(ctx=ctx, from_state=User.State.PENDING_DELETION)
    return managed_user(target.pk)


class Purged(Done):
    # The name the audit log keeps for the account.
    pseudonym: str


@router.delete("/users/{user_id}", response={200: Purged, **COMMON_ERRORS})
def user_purge(request: HttpRequest, user_id: int) -> Any:
    """Deletes the account and its personal data now, whatever its state (needs
    the "delete a user at once" permission); its audit events stay under a
    pseudonym."""
    _target_user, ctx = _target(request, user_id, "purge_user")
    return {"ok": True, "pseudonym": moderation.purge_user(ctx=ctx)}
