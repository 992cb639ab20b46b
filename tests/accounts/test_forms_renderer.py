"""The site's form renderer writes the simple templates' markup in Python
(accounts/forms_renderer.py): the markup must be the templates' own, byte for byte
but for whitespace, for every field of the settings forms, bound or not, valid or
not; and a template the project overrides wins over the quick path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from allauth.account.forms import ChangePasswordForm
from django import forms
from django.forms.renderers import TemplatesSetting
from django.utils.safestring import mark_safe

from accounts import forms as portal_forms
from accounts.forms_renderer import PortalFormRenderer
from accounts.models import User
from accounts.policy import get_policy

pytestmark = pytest.mark.django_db


class TemplatesOnly(TemplatesSetting):
    """The same markup, every piece through its template."""

    field_template_name = "forms/field.html"


def _spaces(html: str) -> str:
    return re.sub(r"\s+", " ", html).strip()


def _both(form_class: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    quick = form_class(*args, renderer=PortalFormRenderer(), **kwargs)
    slow = form_class(*args, renderer=TemplatesOnly(), **kwargs)
    quick.is_bound and quick.is_valid()
    slow.is_bound and slow.is_valid()
    return (
        "".join(f"{f.as_field_group()}{f}{f.label_tag()}{f.errors}" for f in quick),
        "".join(f"{f.as_field_group()}{f}{f.label_tag()}{f.errors}" for f in slow),
    )


class Awkward(forms.Form):
    """Values and attributes that need escaping, booleans, a disabled field, a hidden
    one, a field with neither label nor help text, an unknown attribute type."""

    text = forms.CharField(
        label='Say "hi" & <go>',
        help_text=mark_safe("<em>safe</em> help"),
        widget=forms.TextInput(
            attrs={"placeholder": '"quoted" & <tag>', "autofocus": True, "spellcheck": False}
        ),
    )
    number = forms.IntegerField(required=False, widget=forms.NumberInput(attrs={"min": 0}))
    frozen = forms.CharField(disabled=True, initial=mark_safe("<b>kept</b>"))
    secret = forms.CharField(widget=forms.HiddenInput, initial="a&b")
    bare = forms.EmailField(label="", required=False)
    listed = forms.CharField(required=False, widget=forms.TextInput(attrs={"data-x": ["a"]}))
    agree = forms.BooleanField(required=False)
    choice = forms.ChoiceField(choices=[("a", "A"), ("b", "B")], required=False)
    note = forms.CharField(widget=forms.Textarea, required=False)
    picture = forms.FileField(required=False, widget=forms.ClearableFileInput)
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    many = forms.MultipleChoiceField(
        choices=[("a", "A & a"), ("b", mark_safe("<b>B</b>")), (3, "three")],
        widget=forms.CheckboxSelectMultiple(attrs={"class": "boxes"}),
        initial=["a", "3"],
        help_text="Pick some",
    )
    grouped = forms.ChoiceField(
        choices=[("Group <1>", [("x", "X"), ("y", "Y")]), ("z", "Z")],
        widget=forms.RadioSelect,
        required=False,
    )


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"text": '<script>"x"</script>', "number": "x", "bare": "not-an-email", "many": ["zz"]},
        {"many": ["b"], "grouped": "y"},
    ],
)
def test_awkward_fields_are_written_as_their_templates_write_them(data: Any) -> None:
    quick, slow = _both(Awkward, data)
    assert _spaces(quick) == _spaces(slow)
    assert 'placeholder="&quot;quoted&quot; &amp; &lt;tag&gt;"' in quick


def test_settings_forms_are_written_as_their_templates_write_them(user: User) -> None:
    policy = get_policy(None)
    cases: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
        (ChangePasswordForm, (), {"user": user}),
        (ChangePasswordForm, (), {"data": {"oldpassword": "x", "password1": "a"}, "user": user}),
        (portal_forms.EmailChangeForm, (), {"user": user, "policy": policy}),
        (
            portal_forms.EmailChangeForm,
            (),
            {"data": {"email": "nope"}, "user": user, "policy": policy},
        ),
        (portal_forms.PhoneForm, (), {"user": user, "policy": policy}),
        (portal_forms.PhoneForm, (), {"data": {"phone": "12"}, "user": user, "policy": policy}),
        (portal_forms.DeleteAccountForm, (), {"user": user, "policy": policy}),
        (
            portal_forms.DeleteAccountForm,
            (),
            {"data": {"confirmation": "x"}, "user": user, "policy": policy},
        ),
        (portal_forms.TokenForm, (), {"user": user, "policy": policy}),
        (portal_forms.TokenForm, (), {"data": {"name": ""}, "user": user, "policy": policy}),
        (portal_forms.AvatarForm, (), {"policy": policy}),
        (portal_forms.NameForm, (), {"instance": user, "policy": policy}),
        (
            portal_forms.UsernameForm,
            (),
            {"data": {"username": "?"}, "user": user, "policy": policy},
        ),
        (portal_forms.CodeForm, (), {}),
    ]
    for form_class, args, kwargs in cases:
        quick, slow = _both(form_class, *args, **kwargs)
        assert _spaces(quick) == _spaces(slow), form_class.__name__
        assert "<input" in quick


@pytest.mark.parametrize("overridden", ["text.html", "input.html", "attrs.html"])
def test_an_overridden_template_wins(settings: Any, tmp_path: Path, overridden: str) -> None:
    folder = tmp_path / "django" / "forms" / "widgets"
    folder.mkdir(parents=True)
    markup = {
        "text.html": '<input class="ours" name="{{ widget.name }}">',
        "input.html": '<input class="ours" name="{{ widget.name }}">',
        "attrs.html": ' class="ours"',
    }
    (folder / overridden).write_text(markup[overridden])
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]

    class One(forms.Form):
        name = forms.CharField()

    html = str(One(renderer=PortalFormRenderer())["name"])

    assert (
        html
        == {
            "text.html": '<input class="ours" name="name">',
            "input.html": '<input class="ours" name="name">',
            "attrs.html": '<input type="text" name="name" class="ours">',
        }[overridden]
    )
