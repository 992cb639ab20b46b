"""``{% memo %}`` renders its content once per language, URLconf and script prefix."""

from __future__ import annotations

from typing import Any

import pytest
from django.template import Context, Template
from django.urls import get_script_prefix, set_script_prefix
from django.utils import translation

TEMPLATE = "{% load i18n portal_memo %}{% memo %}{% translate 'Language' %} {% url 'root' %} {{ name }}{% endmemo %}"  # noqa: E501


def test_memo_is_rendered_once_per_language_and_script_prefix() -> None:
    template = Template(TEMPLATE)
    with translation.override("en"):
        first = template.render(Context({"name": "first"}))
        again = template.render(Context({"name": "second"}))
    with translation.override("fr"):
        french = template.render(Context({"name": "third"}))
    old = get_script_prefix()
    set_script_prefix("/portal/")
    try:
        with translation.override("en"):
            prefixed = template.render(Context({"name": "fourth"}))
    finally:
        set_script_prefix(old)

    assert (first, again, french, prefixed) == (
        "Language / first",
        "Language / first",
        "Langue / third",
        "Language /portal/ fourth",
    )


def test_changed_settings_empty_the_memo(settings: Any) -> None:
    template = Template("{% load portal_memo %}{% memo %}{{ name }}{% endmemo %}")
    with translation.override("en"):
        before = template.render(Context({"name": "before"}))
        settings.PORTAL_NAME = "Other portal"
        after = template.render(Context({"name": "after"}))

    assert (before, after) == ("before", "after")


def test_a_named_memo_keeps_one_copy_per_name() -> None:
    template = Template(
        "{% load portal_memo %}{% memo page.name %}{{ page.name }}:{{ page.title }}{% endmemo %}"
    )
    with translation.override("en"):
        email = template.render(Context({"page": {"name": "email", "title": "Email"}}))
        phone = template.render(Context({"page": {"name": "phone", "title": "Phone"}}))
        again = template.render(Context({"page": {"name": "email", "title": "changed"}}))

    assert (email, phone, again) == ("email:Email", "phone:Phone", "email:Email")


def test_memo_takes_at_most_one_argument() -> None:
    from django.template import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError, match="at most one argument"):
        Template("{% load portal_memo %}{% memo a b %}x{% endmemo %}")
