from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import get_script_prefix
from django.utils import timezone
from django.utils.functional import Promise, cached_property
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from accounts.models import LANGUAGE_CHOICES, TokenScope, User
from accounts.policy import PolicyGuardedForm
from accounts.usernames import normalize_username, validate_username


def _clean_text(value: str) -> str:
    """Trim and refuse control characters in a short single-line text."""
    value = (value or "").strip()
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise ValidationError(_("Remove the control characters."), code="control")
    return value


class NameForm(PolicyGuardedForm, forms.ModelForm):
    policy_field = "name"

    class Meta:
        model = User
        fields = ["display_name"]
        labels = {"display_name": _("Display name")}
        # Opened in place (htmx), the form takes the focus from the Edit link.
        widgets = {"display_name": forms.TextInput(attrs={"autofocus": True})}
        help_texts = {
            "display_name": _("How you appear in the portal. Leave empty to use your name.")
        }

    def clean_display_name(self) -> str:
        return _clean_text(self.cleaned_data["display_name"])


class DetailsForm(PolicyGuardedForm, forms.ModelForm):
    policy_field = "profile"
    language = forms.ChoiceField(
        label=_("Language"),
        choices=[("", _("The browser's language")), *LANGUAGE_CHOICES],
        required=False,
    )

    class Meta:
        model = User
        fields = ["first_name", "last_name", "language", "time_zone"]
        labels = {
            "first_name": _("Given name"),
            "last_name": _("Family name"),
            "time_zone": _("Time zone"),
        }
        help_texts = {"time_zone": _("Dates and times are shown in this time zone.")}
        widgets = {"first_name": forms.TextInput(attrs={"autofocus": True})}

    def clean_first_name(self) -> str:
        return _clean_text(self.cleaned_data["first_name"])

    def clean_last_name(self) -> str:
        return _clean_text(self.cleaned_data["last_name"])


class UsernameForm(PolicyGuardedForm, forms.Form):
    policy_field = "username"
    username = forms.CharField(
        label=_("New username"),
        max_length=150,
        help_text=_("3 to 30 characters: letters a–z, digits, and . _ - between them."),
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autocapitalize": "none", "autofocus": True}
        ),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_username(self) -> str:
        value = normalize_username(self.cleaned_data["username"])
        validate_username(value)
        if value == self.user.username.lower():
            raise ValidationError(_("This is already your username."), code="same")
        if User.objects.filter(username__iexact=value).exclude(pk=self.user.pk).exists():
            raise ValidationError(_("This username is taken. Please choose another."), code="taken")
        return value


class AvatarForm(PolicyGuardedForm, forms.Form):
    policy_field = "avatar"
    avatar = forms.FileField(
        label=_("New picture"),
        help_text=_(
            "PNG, JPEG or WebP, up to 5 MB and 4096 × 4096 pixels (WebP: 2048 × 2048). "  # noqa: RUF001 - the multiplication sign
            "It is cropped to a square."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )


class NormalizedEmailField(forms.EmailField):
    """Folds full-width and other compatibility forms before validating."""

    def to_python(self, value: Any) -> str:
        from accounts.emails import normalize_email

        return normalize_email(super().to_python(value) or "")


class EmailChangeForm(PolicyGuardedForm, forms.Form):
    policy_field = "email"

    email = NormalizedEmailField(
        label=_("New email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text=_("We send a code to this address; it becomes yours once you enter it."),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_email(self) -> str:
        from accounts.emails import email_key, normalize_email

        value = normalize_email(self.cleaned_data["email"])
        if email_key(value) == email_key(self.user.email):
            raise ValidationError(_("This is already your email address."), code="same")
        return value


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autocapitalize": "none",
            }
        ),
    )


class PhoneForm(PolicyGuardedForm, forms.Form):
    policy_field = "phone"

    phone = forms.CharField(
        label=_("Phone number"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
        help_text=_("With the country code, for example +33 6 12 34 56 78."),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_phone(self) -> str:
        from accounts.phones import parse_phone

        value = parse_phone(self.cleaned_data["phone"])
        if value == self.user.phone:
            raise ValidationError(_("This is already your phone number."), code="same")
        return value


class PasskeyNameForm(PolicyGuardedForm, forms.Form):
    policy_field = "passkeys"

    name = forms.CharField(
        label=_("Name"),
        max_length=64,
        help_text=_("A name you will recognise, for example “Blue key” or “Laptop”."),
    )

    def clean_name(self) -> str:
        value = _clean_text(self.cleaned_data["name"])
        if not value:
            raise ValidationError(_("Enter a name."), code="required")
        return value


class DeleteAccountForm(PolicyGuardedForm, forms.Form):
    policy_field = "delete_account"

    confirmation = forms.CharField(
        label=_("Type your username to confirm"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_confirmation(self) -> str:
        value = self.cleaned_data["confirmation"].strip()
        if value.lower() != self.user.username.lower():
            raise ValidationError(
                _("This is not your username. Type it exactly to confirm."), code="mismatch"
            )
        return value


class TokenForm(PolicyGuardedForm, forms.Form):
    """A new personal access token. The flow (``accounts.flows.tokens``) judges the
    name, scopes and expiry; its per-field refusals land on these fields."""

    policy_field = "tokens"
    DEFAULT_DAYS = 30
    MAX_DAYS = 365

    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What the token is for, for example “Backup script”."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    scopes = forms.MultipleChoiceField(
        label=_("What it may do"),
        choices=TokenScope.choices,
        initial=[TokenScope.ACCOUNT_READ.value],
        widget=forms.CheckboxSelectMultiple,
    )
    expires_at = forms.DateField(
        label=_("Expires on"),
        help_text=_("It stops working at the start of this day: one year from today at most."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        from accounts.flows.tokens import scopes_for

        super().__init__(*args, **kwargs)
        allowed = scopes_for(user)
        scopes = self.fields["scopes"]
        scopes.choices = [c for c in TokenScope.choices if c[0] in allowed]  # type: ignore[attr-defined]
        today = timezone.localdate()
        field = self.fields["expires_at"]
        field.initial = today + dt.timedelta(days=self.DEFAULT_DAYS)
        field.widget.attrs.update(
            min=(today + dt.timedelta(days=1)).isoformat(),
            max=(today + dt.timedelta(days=self.MAX_DAYS)).isoformat(),
        )

    def clean_expires_at(self) -> dt.datetime:
        """The start of the chosen day, in the user's time zone."""
        day: dt.date = self.cleaned_data["expires_at"]
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


# The new-token form as a page view shows it (blank), by language, script prefix,
# day and scopes offered: see ``blank_token_form_fields``.
_blank_token_forms: dict[tuple[Any, ...], SafeString] = {}
_BLANK_TOKEN_FORMS = 256


def blank_token_form_fields(*, user: User, policy: Any) -> SafeString:
    """``accounts/includes/form_fields.html`` for a blank ``TokenForm``. Its markup
    depends only on the language, the day (its dates), the scopes the user may
    give and the script prefix — not on the policy, which only refuses to validate
    — so it is written once per such key and reused: the tokens page is opened far
    more often than a token is made, and the form's three fields cost about a
    third of the page. A bound form (errors, values) is always rendered anew."""
    from accounts.flows.tokens import scopes_for

    key = (get_language(), get_script_prefix(), timezone.localdate(), tuple(scopes_for(user)))
    html = _blank_token_forms.get(key)
    if html is None:
        if len(_blank_token_forms) >= _BLANK_TOKEN_FORMS:
            _blank_token_forms.clear()
        form = TokenForm(policy=policy, user=user)
        html = render_to_string("accounts/includes/form_fields.html", {"form": form})
        _blank_token_forms[key] = html
    return html


@receiver(setting_changed)
def _forget_blank_token_forms(**kwargs: Any) -> None:
    _blank_token_forms.clear()


def _reset_password_form_base() -> type:
    from allauth.account.forms import ResetPasswordForm

    return ResetPasswordForm


class PasswordResetForm(_reset_password_form_base()):  # type: ignore[misc]
    """allauth's password reset request (``ACCOUNT_FORMS``). A machine client's
    service account has no address, but should one ever be given one, it is still
    never sent a way to choose a password: it does not sign in."""

    def clean_email(self) -> str:
        from allauth.account import app_settings
        from allauth.account.adapter import get_adapter

        email: str = super().clean_email()
        found: list[User] = getattr(self, "users", [])
        self.users = [u for u in found if not u.is_service_account]
        if not self.users and not app_settings.PREVENT_ENUMERATION:
            raise get_adapter().validation_error("unknown_email")
        return email


# --- allauth's password forms --------------------------------------------------------------

# (form class, field name, language, script prefix) -> the field's help text.
_HELP_TEXTS: dict[tuple[type, str, str | None, str], Any] = {}


@receiver(setting_changed)
def _forget_help_texts(**kwargs: Any) -> None:
    _HELP_TEXTS.clear()


class HelpTextsOnceMixin(forms.Form):
    """Evaluates the fields' lazy help texts once per language, not on each use.

    allauth gives the password fields lazy help texts: the password validators' list
    and the "Forgot your password?" link (a template looked for, then a reversed
    address). A lazy text is evaluated anew each time it is read, and rendering a
    field reads it four times (the bound field, its ``aria-describedby``, the test
    for the help block, the block itself): on the password page that cost more than
    its three fields' markup. What they depend on (the validators, the templates,
    the address map) changes only with the settings, so the text is kept per
    language and script prefix, and forgotten when a setting changes (tests).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        language = get_language()
        prefix = get_script_prefix()
        for name, field in self.fields.items():
            if isinstance(field.help_text, Promise):
                key = (type(self), name, language, prefix)
                try:
                    field.help_text = _HELP_TEXTS[key]
                except KeyError:
                    field.help_text = _HELP_TEXTS[key] = str(field.help_text)


def _password_form_bases() -> tuple[type, type]:
    from allauth.account.forms import ChangePasswordForm, SetPasswordForm

    return ChangePasswordForm, SetPasswordForm


_ChangePasswordBase, _SetPasswordBase = _password_form_bases()


class ChangePasswordForm(HelpTextsOnceMixin, _ChangePasswordBase):  # type: ignore[misc,valid-type]
    """allauth's password change (``ACCOUNT_FORMS``), its help texts evaluated once."""


class SetPasswordForm(HelpTextsOnceMixin, _SetPasswordBase):  # type: ignore[misc,valid-type]
    """allauth's first password (``ACCOUNT_FORMS``), its help texts evaluated once."""


def _disconnect_form_base() -> type:
    from allauth.socialaccount.forms import DisconnectForm

    return DisconnectForm


class DisconnectForm(_disconnect_form_base()):  # type: ignore[misc]
    """allauth's form to unlink an account (``SOCIALACCOUNT_FORMS``), reading the
    user's accounts only when a submission is checked: the linked accounts page
    lists them itself (``linked_accounts_list``), and building the query the page
    view never ran cost about a tenth of the page."""

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        if args or kwargs.get("data") is not None:
            super().__init__(*args, request=request, **kwargs)
            return
        self.request = request
        forms.Form.__init__(self, **kwargs)

    @cached_property
    def accounts(self) -> Any:
        from allauth.socialaccount.models import SocialAccount

        return SocialAccount.objects.filter(user=self.request.user)
