"""The back-office's forms: one reason form for every action that needs a reason,
and the typed confirmation of an immediate deletion."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User


class ReasonForm(forms.Form):
    """A reason, recorded in the audit log; with ``until``, an optional end time
    in the future (a timed suspension). ``min_length`` asks for a real sentence."""

    reason = forms.CharField(
        label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )
    until = forms.DateTimeField(
        label=_("Until (optional)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("Empty: until someone restores the account."),
    )

    def __init__(
        self,
        *args: Any,
        until: bool = False,
        min_length: int = 1,
        help_text: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.min_length = min_length
        if not until:
            del self.fields["until"]
        if help_text:
            self.fields["reason"].help_text = help_text

    def clean_reason(self) -> str:
        value = self.cleaned_data["reason"].strip()
        if not value:
            raise forms.ValidationError(_("A reason is required."))
        if len(value) < self.min_length:
            raise forms.ValidationError(_("Give a real reason (at least 5 characters)."))
        return value

    def clean_until(self) -> Any:
        value = self.cleaned_data.get("until")
        if value is None:
            return value
        try:
            # Stored in UTC: PostgreSQL refuses offsets beyond 15:59, which a
            # datetime (and the Management API's input) may carry.
            value = value.astimezone(dt.UTC)
        except OverflowError as exc:
            raise forms.ValidationError(_("Enter a valid date/time.")) from exc
        if value <= timezone.now():
            raise forms.ValidationError(_("Choose a time in the future."))
        return value


def suspend_form(data: Any = None, target: User | None = None) -> ReasonForm:
    return ReasonForm(data, until=True)


def reason_form(data: Any = None, target: User | None = None) -> ReasonForm:
    return ReasonForm(data)


def impersonation_form(data: Any = None, target: User | None = None) -> ReasonForm:
    return ReasonForm(
        data,
        min_length=5,
        help_text=_("Why you need to see the account as its owner. It is recorded."),
    )


def confirm_form(data: Any = None, target: User | None = None) -> forms.Form:
    return forms.Form(data)


class PurgeForm(forms.Form):
    username = forms.CharField(label=_("Type the username to confirm"), max_length=150)

    def __init__(self, *args: Any, target: User, **kwargs: Any) -> None:
        self.target = target
        super().__init__(*args, **kwargs)

    def clean_username(self) -> str:
        value = self.cleaned_data["username"].strip()
        if value != self.target.username:
            raise forms.ValidationError(_("This is not the account's username."))
        return value


def purge_form(data: Any = None, target: User | None = None) -> PurgeForm:
    assert target is not None
    return PurgeForm(data, target=target)
