"""Changing the primary email address, proven by a code sent to the new address."""

from __future__ import annotations

from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from accounts.emails import email_key, normalize_email
from accounts.models import User
from accounts.services.audit import Action, audit_record
from accounts.services.codes import CodeResult, Purpose, code_consume, code_issue, code_pending


@dataclass(frozen=True)
class ChangeStarted:
    new_email: str
    code: str
    # The address belongs to another account: no code goes out, its owner is told.
    taken_by: User | None


def email_taken(address: str, *, exclude: User | None = None) -> User | None:
    qs = User.objects.filter(email_key=email_key(address))
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return qs.first()


@transaction.atomic
def email_change_start(*, user: User, new_email: str, request: HttpRequest | None) -> ChangeStarted:
    """Issues a code for ``new_email`` (a newer request kills the older code).

    A taken address gets exactly the same treatment on the outside: the caller
    shows the same page; only the messages sent differ (``finalize``)."""
    new_email = normalize_email(new_email)
    owner = email_taken(new_email, exclude=user)
    issued = code_issue(
        user=user, purpose=Purpose.EMAIL_CHANGE, target=new_email, deliverable=owner is None
    )
    audit_record(
        action=Action.EMAIL_CHANGE_REQUESTED,
        subject=user,
        request=request,
        data={"new_email": new_email},
    )
    return ChangeStarted(new_email=new_email, code=issued.code, taken_by=owner)


def email_change_pending(*, user: User) -> str | None:
    row = code_pending(user=user, purpose=Purpose.EMAIL_CHANGE)
    return row.target if row is not None else None


@dataclass(frozen=True)
class ChangeResult:
    result: CodeResult
    old_email: str = ""
    new_email: str = ""


def email_change_confirm(*, user: User, code: str, request: HttpRequest | None) -> ChangeResult:
    """Applies the change when ``code`` is right. One of two racing confirmations
    wins; the other finds the code used."""
    with transaction.atomic():
        result, row = code_consume(user=user, purpose=Purpose.EMAIL_CHANGE, code=code)
        if result is not CodeResult.OK or row is None:
            return ChangeResult(result)
        locked = User.objects.select_for_update().get(pk=user.pk)
        old_email, new_email = locked.email, row.target
        if email_taken(new_email, exclude=locked) is not None:
            return ChangeResult(CodeResult.MISSING)
        try:
            with transaction.atomic():
                locked.email = new_email
                locked.save(update_fields=["email"])
        except IntegrityError:
            return ChangeResult(CodeResult.MISSING)
        EmailAddress.objects.filter(user=locked).delete()
        EmailAddress.objects.create(user=locked, email=new_email, verified=True, primary=True)
        audit_record(
            action=Action.EMAIL_CHANGED,
            subject=locked,
            request=request,
            data={"before": old_email, "after": new_email},
        )
    user.email = new_email
    return ChangeResult(CodeResult.OK, old_email=old_email, new_email=new_email)
