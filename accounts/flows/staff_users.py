"""Staff creating an account, and changing an account's profile, email address
and phone number (the Management API; values checked first with
``accounts.staff_forms``). Both save through ``moderation.save_user_by_staff``:
the permission, the guard rails and one audit event with the staff member as actor.

Staff never prove an address or a number: one they set is recorded unverified,
so it is no way to verify the account's owner until the owner proves it (an
email address at the next sign-in or by resetting the password, which allauth
then marks verified; a phone number with the phone page's code). The user is
told of a change of either, at the address the account had before (and a new
address is told too).
"""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from accounts.access import staff_with_permission
from accounts.actor import Actor
from accounts.flows.errors import AccessDenied
from accounts.flows.moderation import check_may_act, save_user_by_staff
from accounts.models import User
from accounts.notifications import notify
from accounts.phones import format_phone
from accounts.staff_forms import PHONE_TAKEN, PROFILE_FIELDS, USERNAME_TAKEN

OWN_CONTACT = _(
    "You cannot set your own email address or phone number here: change them on your "
    "settings pages, where a code proves them."
)


def _taken(user: User) -> ValidationError:
    """Another account took a value meanwhile (the database refused the row)."""
    from allauth.account.adapter import get_adapter

    others = User.objects.exclude(pk=user.pk) if user.pk else User.objects.all()
    if others.filter(username__iexact=user.username).exists():
        return ValidationError({"username": [USERNAME_TAKEN]})
    if user.phone and others.filter(phone=user.phone).exists():
        return ValidationError({"phone": [PHONE_TAKEN]})
    return ValidationError({"email": [get_adapter().error_messages["email_taken"]]})


def _save(ctx: Actor, user: User, changed: list[str], extra: dict[str, Any] | None = None) -> None:
    try:
        with transaction.atomic():
            save_user_by_staff(ctx=ctx, user=user, changed=changed, extra=extra)
    except IntegrityError as exc:
        raise _taken(user) from exc


def create_user_by_staff(
    *, ctx: Actor, user: User, password: str = "", send_invitation: bool = False
) -> User:
    """Creates ``user`` (unsaved; its fields checked by ``StaffUserCreateForm``)
    with ``password``, or with an unusable one. Its email address becomes allauth's
    primary, unverified address. ``send_invitation`` (without a password): the user
    is sent how to choose a password, with allauth's password reset."""
    staff_with_permission(ctx, "accounts.add_user")
    if user.pk is not None or not user.email:
        raise ValueError("a new account with an email address")
    if password and send_invitation:
        raise ValueError("an invitation is for an account without a password")
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    changed = [name for name in (*PROFILE_FIELDS, "email") if getattr(user, name)]
    how = "set" if password else "invitation" if send_invitation else "none"
    with transaction.atomic():
        _save(ctx, user, changed, extra={"password": how})
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=False)
        if send_invitation:
            # No ``ctx``: the message names neither the staff member's address nor device.
            notify(ctx=None, user=user, event="invitation", context={"email": user.email})
    return user


def staff_editable(ctx: Actor, *, contact: bool = False) -> User:
    """``ctx.subject``, once the staff member may edit it: with the "change user"
    permission; other staff and superusers by superusers only; their own account's
    profile, but not its address or number (``contact``)."""
    staff = staff_with_permission(ctx, "accounts.change_user")
    if ctx.subject is None:
        raise AccessDenied()
    if ctx.subject.pk != staff.pk:
        check_may_act(ctx, ctx.subject)
    if contact and ctx.subject.pk == staff.pk:
        raise AccessDenied(OWN_CONTACT, staff=True)
    return ctx.subject


def update_user_by_staff(*, ctx: Actor, changes: dict[str, Any]) -> User:
    """Changes the fields of ``ctx.subject`` in ``changes`` (values checked by
    ``StaffUserUpdateForm``): ``PROFILE_FIELDS``, ``email``, ``phone`` ('': none).
    Returns the account as saved."""
    unknown = set(changes) - {*PROFILE_FIELDS, "email", "phone"}
    if unknown:
        raise ValueError(f"not fields staff edit: {sorted(unknown)}")
    target = staff_editable(ctx, contact=bool({"email", "phone"} & set(changes)))
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=target.pk).first()
        if user is None:
            raise AccessDenied()
        before_email, before_phone = user.email, user.phone
        changed = [name for name, value in changes.items() if getattr(user, name) != value]
        for name in changed:
            setattr(user, name, changes[name])
        if "phone" in changed and user.phone_verified:
            user.phone_verified = False
            changed.append("phone_verified")
        if not changed:
            return user
        _save(ctx, user, changed)
        if "email" in changed:
            _email_rows_replace(user, before_email)
            _tell_email_changed(user, before_email)
        if "phone" in changed:
            notify(
                ctx=None,
                user=user,
                event="phone_changed_by_staff",
                to=before_email or user.email,
                context={
                    "phone": format_phone(user.phone),
                    "old_phone": format_phone(before_phone),
                },
            )
    return user


def _email_rows_replace(user: User, before: str) -> None:
    """The new address is the account's only, primary one (as after the user's own
    change), verified only if the user had already proven it."""
    proven = EmailAddress.objects.filter(
        user=user, email__iexact=user.email, verified=True
    ).exists()
    EmailAddress.objects.filter(user=user).delete()
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=proven)


def _tell_email_changed(user: User, before: str) -> None:
    context = {"old_email": before, "new_email": user.email}
    for to, old in ((before, True), (user.email, False)):
        if to:
            notify(
                ctx=None,
                user=user,
                event="email_changed_by_staff",
                to=to,
                context={**context, "to_old": old},
            )
