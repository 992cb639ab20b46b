from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_username_unique_case_insensitively() -> None:
    User.objects.create(username="Mike", email="a@example.org")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="mike", email="b@example.org")


def test_email_unique_case_insensitively() -> None:
    User.objects.create(username="one", email="Mike@Example.org")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="two", email="mike@example.org")


def test_blank_emails_and_phones_may_repeat() -> None:
    User.objects.create(username="one", email="")
    User.objects.create(username="two", email="")
    assert User.objects.filter(email="", phone="").count() == 2


def test_phone_unique_when_set() -> None:
    User.objects.create(username="one", email="1@example.org", phone="+33612345678")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="two", email="2@example.org", phone="+33612345678")


def test_is_active_mirrors_state_in_the_database() -> None:
    user = User.objects.create(username="one", email="1@example.org")
    assert user.state == User.State.ACTIVE
    assert user.is_active
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=user.pk).update(state=User.State.SUSPENDED)
    User.objects.filter(pk=user.pk).update(state=User.State.SUSPENDED, is_active=False)
    user.refresh_from_db()
    assert not user.is_active


def test_natural_key_lookup_ignores_case() -> None:
    user = User.objects.create(username="Mike", email="m@example.org")
    assert User.objects.get_by_natural_key("MIKE") == user


def test_shown_name_and_initials() -> None:
    user = User(username="jdoe", first_name="Jane", last_name="Doe")
    assert user.shown_name == "Jane Doe"
    assert user.initials == "JD"
    user.display_name = "JJ"
    assert user.shown_name == "JJ"
