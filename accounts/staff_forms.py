"""The forms staff fill to create and edit an account: the back-office's add and
change forms, and the Management API's create and update, which check a value
by the same rules (and say so in the same words).

- A username staff type follows the sign-up rules (``accounts.usernames`` through
  the allauth adapter) and is unique regardless of case; an account's current
  username is kept as it is, even one older than the rules.
- Names refuse control characters, as on the settings pages.
- An email address is stored in normal form and belongs to one account
  (look-alikes included), as at sign-up; a phone number is parsed to E.164 with
  the settings pages' rules and belongs to one account.
- A password follows the password rules of the portal's pages (the allauth
  adapter's ``clean_password``).
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import get_adapter
from django import forms
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from accounts.emails import normalize_email
from accounts.forms import _clean_text
from accounts.models import User
from accounts.phones import parse_phone
from accounts.services.email import email_taken
from accounts.services.phone import phone_taken

# The fields of the account staff edit (the change form's, without privileges).
PROFILE_FIELDS = ("username", "display_name", "first_name", "last_name", "language", "time_zone")
USERNAME_TAKEN = User._meta.get_field("username").error_messages["unique"]
PHONE_TAKEN = _("This phone number belongs to another account.")


def staff_username(value: str, *, instance: User | None) -> str:
    """``value`` as a username staff may give ``instance`` (None: a new account)."""
    if instance is not None and instance.pk is not None and value == instance.username:
        return value
    username = get_adapter().clean_username(value, shallow=True)
    taken = User.objects.filter(username__iexact=username)
    if instance is not None and instance.pk is not None:
        taken = taken.exclude(pk=instance.pk)
    if taken.exists():
        raise ValidationError(USERNAME_TAKEN, code="unique")
    return username


def staff_email(value: str, *, instance: User | None) -> str:
    """``value`` in normal form, when no other account has it (or a look-alike)."""
    address = normalize_email(value)
    validate_email(address)
    if email_taken(address, exclude=instance if instance and instance.pk else None):
        raise ValidationError(get_adapter().error_messages["email_taken"], code="unique")
    return address


def staff_phone(value: str, *, instance: User | None) -> str:
    """``value`` in E.164 ('' for none), when no other account has it."""
    if not (value or "").strip():
        return ""
    if instance is not None and value == instance.phone:
        return value
    number = parse_phone(value)
    if phone_taken(number, exclude=instance if instance and instance.pk else None):
        raise ValidationError(PHONE_TAKEN, code="unique")
    return number


class StaffNamesMixin:
    cleaned_data: dict[str, Any]

    def clean_display_name(self) -> str:
        return _clean_text(self.cleaned_data["display_name"])

    def clean_first_name(self) -> str:
        return _clean_text(self.cleaned_data["first_name"])

    def clean_last_name(self) -> str:
        return _clean_text(self.cleaned_data["last_name"])


class StaffUserChangeForm(StaffNamesMixin, UserChangeForm):
    """The back-office's change form (the admin builds it with the fields it shows)."""

    class Meta(UserChangeForm.Meta):
        model = User

    def clean_username(self) -> str:
        return staff_username(self.cleaned_data["username"], instance=self.instance)


class StaffUserCreationForm(AdminUserCreationForm):
    """The back-office's add form: a username and a password, or none."""

    class Meta(AdminUserCreationForm.Meta):
        model = User

    def clean_username(self) -> str:
        return staff_username(self.cleaned_data["username"], instance=None)


class StaffUserUpdateForm(StaffUserChangeForm):
    """The change form's profile fields, with the email address and the phone
    number, which the Management API sets too."""

    password = None  # type: ignore[assignment]
    email = forms.CharField(label=_("Email address"), max_length=254, required=False)
    phone = forms.CharField(label=_("Phone number"), max_length=32, required=False)

    class Meta(StaffUserChangeForm.Meta):
        fields = (*PROFILE_FIELDS, "email", "phone")  # type: ignore[assignment]

    def clean_email(self) -> str:
        value = self.cleaned_data["email"]
        if value == self.instance.email:
            return value
        if not value.strip():
            # An address is changed, never removed (it is how the user is reached).
            raise ValidationError(self.fields["email"].error_messages["required"], code="required")
        return staff_email(value, instance=self.instance)

    def clean_phone(self) -> str:
        return staff_phone(self.cleaned_data["phone"], instance=self.instance)


class StaffUserCreateForm(forms.ModelForm, StaffNamesMixin):
    """A new account as the Management API creates it: a username, an email
    address, and a password or none (``send_invitation``: the user is sent how to
    choose one)."""

    email = forms.CharField(label=_("Email address"), max_length=254)
    password = forms.CharField(label=_("Password"), strip=False, required=False)
    send_invitation = forms.BooleanField(required=False)

    class Meta:
        model = User
        fields = (*PROFILE_FIELDS, "email")

    def clean_username(self) -> str:
        return staff_username(self.cleaned_data["username"], instance=None)

    def clean_email(self) -> str:
        return staff_email(self.cleaned_data["email"], instance=None)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("password") and data.get("send_invitation"):
            self.add_error(
                "send_invitation",
                _("An invitation is for an account without a password: send one or the other."),
            )
        return data

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        # Once the instance has the username, address and names: the rules that
        # compare the password with them see the new account.
        password = self.cleaned_data.get("password")
        if password:
            try:
                get_adapter().clean_password(password, user=self.instance)
            except ValidationError as exc:
                self.add_error("password", exc)
