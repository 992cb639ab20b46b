"""Adding, changing and removing the phone number, proven by a code sent by SMS."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from accounts.models import User
from accounts.services.audit import Action, audit_record
from accounts.services.codes import CodeResult, Purpose, code_consume, code_issue, code_pending


@dataclass(frozen=True)
class PhoneStarted:
    phone: str
    code: str
    taken: bool


@transaction.atomic
def phone_change_start(*, user: User, phone: str, request: HttpRequest | None) -> PhoneStarted:
    """``phone`` is E.164 (``accounts.phones.parse_phone``). A number another
    account has gets the same outward treatment, but no code is sent to it."""
    taken = User.objects.filter(phone=phone).exclude(pk=user.pk).exists()
    issued = code_issue(
        user=user, purpose=Purpose.PHONE_CHANGE, target=phone, deliverable=not taken
    )
    audit_record(
        action=Action.PHONE_CHANGE_REQUESTED, subject=user, request=request, data={"phone": phone}
    )
    return PhoneStarted(phone=phone, code=issued.code, taken=taken)


def phone_change_pending(*, user: User) -> str | None:
    row = code_pending(user=user, purpose=Purpose.PHONE_CHANGE)
    return row.target if row is not None else None


@dataclass(frozen=True)
class PhoneResult:
    result: CodeResult
    old_phone: str = ""
    phone: str = ""


def phone_change_confirm(*, user: User, code: str, request: HttpRequest | None) -> PhoneResult:
    with transaction.atomic():
        result, row = code_consume(user=user, purpose=Purpose.PHONE_CHANGE, code=code)
        if result is not CodeResult.OK or row is None:
            return PhoneResult(result)
        locked = User.objects.select_for_update().get(pk=user.pk)
        old_phone = locked.phone
        try:
            with transaction.atomic():
                locked.phone = row.target
                locked.phone_verified = True
                locked.save(update_fields=["phone", "phone_verified"])
        except IntegrityError:
            return PhoneResult(CodeResult.MISSING)
        audit_record(
            action=Action.PHONE_CHANGED if old_phone else Action.PHONE_ADDED,
            subject=locked,
            request=request,
            data={"before": old_phone, "after": row.target},
        )
    user.phone, user.phone_verified = row.target, True
    return PhoneResult(CodeResult.OK, old_phone=old_phone, phone=row.target)


@transaction.atomic
def phone_remove(*, user: User, request: HttpRequest | None) -> str:
    """Removes the number; returns the old one ('' when there was none)."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    old_phone = locked.phone
    if not old_phone:
        return ""
    locked.phone, locked.phone_verified = "", False
    locked.save(update_fields=["phone", "phone_verified"])
    audit_record(
        action=Action.PHONE_REMOVED, subject=locked, request=request, data={"before": old_phone}
    )
    user.phone, user.phone_verified = "", False
    return old_phone
