from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core.management import CommandError, call_command

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_prints_credentials(settings: Any) -> None:
    settings.DEBUG = True
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)
    assert User.objects.count() == 2
    demo = User.objects.get(username="alice")
    staff = User.objects.get(username="sam")
    assert not demo.is_staff
    assert staff.is_staff
    assert EmailAddress.objects.filter(verified=True, primary=True).count() == 2
    text = out.getvalue()
    assert "demo-alice-portal-2026" in text
    assert "demo-sam-backoffice-2026" in text
    assert demo.check_password("demo-alice-portal-2026")


def test_seed_demo_refuses_with_debug_off(settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo", stdout=StringIO())
    assert not User.objects.exists()
