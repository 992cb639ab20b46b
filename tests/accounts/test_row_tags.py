"""The settings tables' quicker tags write exactly what Django's own tags write."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.template import Context, Template
from django.utils import timezone, translation


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 3, 29, 0, 59, 30, 123456, tzinfo=UTC),  # the night Paris changes hour
        datetime(2026, 12, 6, 16, 0, tzinfo=UTC),
        date(2026, 1, 2),
        None,
        "",
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "Pacific/Chatham"])
def test_isoformat_is_date_c(value: object, zone: str) -> None:
    with timezone.override(zone):
        ours = Template("{% load portal_time %}{{ value|isoformat }}").render(
            Context({"value": value})
        )
        django = Template("{{ value|date:'c' }}").render(Context({"value": value}))
    assert ours == django


@pytest.mark.parametrize(
    "name",
    ["session_end", "passkey_rename", "passkey_remove", "token_revoke", "connected_app_revoke"],
)
@pytest.mark.parametrize("pk", [1, 42, 987654321])
def test_row_url_is_url(name: str, pk: int) -> None:
    context = Context({"name": name, "pk": pk})
    with translation.override("fr"):
        ours = Template("{% load portal_urls %}{% row_url name pk %}").render(context)
        django = Template("{% url name pk %}").render(context)
    assert ours == django
    assert str(pk) in ours


def test_row_url_with_a_script_prefix() -> None:
    from django.urls import get_script_prefix, set_script_prefix

    old = get_script_prefix()
    set_script_prefix("/portal/")
    try:
        context = Context({"pk": 7})
        ours = Template("{% load portal_urls %}{% row_url 'session_end' pk %}").render(context)
        django = Template("{% url 'session_end' pk %}").render(context)
    finally:
        set_script_prefix(old)
    assert ours == django == "/portal/settings/sessions/7/end/"
