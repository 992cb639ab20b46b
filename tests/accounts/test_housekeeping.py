"""``manage.py clear_expired``: one-time codes, API verifications and impersonation
links go a day after they expired; live and recently expired ones stay."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import ApiVerification, ImpersonationTicket, User, VerificationCode

pytestmark = pytest.mark.django_db

AGES = {
    "live": timedelta(minutes=-5),  # expires in five minutes
    "just expired": timedelta(hours=1),
    "expired yesterday": timedelta(hours=25),
    "long gone": timedelta(days=40),
}
GONE = {"expired yesterday", "long gone"}


def make_rows(user: User, staff: User, now: datetime) -> None:
    for name, age in AGES.items():
        expires = now - age
        VerificationCode.objects.create(
            user=user, purpose="email_change", target=name, code_hash="s$h", expires_at=expires
        )
        ApiVerification.objects.create(
            user=user, digest=f"d-{name}", purpose="identity", method=name, expires_at=expires
        )
        ImpersonationTicket.objects.create(
            staff=staff, target=user, digest=f"t-{name}", reason=name, expires_at=expires
        )


def run() -> str:
    out = io.StringIO()
    call_command("clear_expired", stdout=out)
    return out.getvalue()


def test_rows_expired_more_than_a_day_ago_are_deleted(user: User, staff_user: User) -> None:
    make_rows(user, staff_user, timezone.now())
    # Used ones go by the same rule: used within their time, kept a day after it.
    VerificationCode.objects.filter(target="just expired").update(used_at=timezone.now())

    assert run() == (
        "Deleted 2 one-time codes.\nDeleted 2 API verifications.\nDeleted 2 impersonation links.\n"
    )

    kept = set(AGES) - GONE
    assert set(VerificationCode.objects.values_list("target", flat=True)) == kept
    assert set(ApiVerification.objects.values_list("method", flat=True)) == kept
    assert set(ImpersonationTicket.objects.values_list("reason", flat=True)) == kept
    assert User.objects.filter(pk__in=[user.pk, staff_user.pk]).count() == 2


def test_running_again_deletes_nothing(user: User, staff_user: User) -> None:
    make_rows(user, staff_user, timezone.now())
    run()
    assert run() == (
        "Deleted 0 one-time codes.\nDeleted 0 API verifications.\nDeleted 0 impersonation links.\n"
    )
    assert VerificationCode.objects.count() == 2
