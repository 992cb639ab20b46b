"""The API checks what it is sent with the settings pages' own forms, so a value
is judged by the same rules (and told in the same words) on every surface."""

from __future__ import annotations

import copy
from typing import Any

from django.core.exceptions import ValidationError
from django.forms import BaseForm
from django.http import HttpRequest

from accounts.flows import gate
from accounts.models import User
from accounts.policy import get_policy


def door(
    request: HttpRequest,
    ctx: Any,
    *,
    field: str | None = None,
    edit: bool = True,
    reauth: bool = False,
    sensitive: bool = False,
) -> None:
    """The checks the settings pages make at their door (``accounts.gates``), before
    the input is read: the policy, the impersonation refusal, the verification. The
    flow makes them again."""
    gate.check(
        ctx, field=field, edit=edit, reauth=reauth, sensitive=sensitive, policy=get_policy(request)
    )


def valid(form: BaseForm, names: dict[str, str] | None = None) -> dict[str, Any]:
    """The form's cleaned data, or ``ValidationError`` with each field's messages,
    under the API's name of the field where it differs from the form's (``names``:
    form field -> API field)."""
    if not form.is_valid():
        names = names or {}
        raise ValidationError(
            {
                names.get(name, name): [str(m) for m in messages]
                for name, messages in form.errors.items()
            }
        )
    return form.cleaned_data


def user_copy(user: User) -> User:
    """A copy for a ModelForm to write into while validating: the user is changed
    only by the flow."""
    return copy.copy(user)
