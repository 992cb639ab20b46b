"""The profile section: display name, personal details, avatar, username.

Each card edits in place with htmx (view -> form -> saved card) and the same URLs
work as plain pages without JavaScript.
"""

from __future__ import annotations

import copy
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import BaseForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.flows import profile as flows
from accounts.forms import AvatarForm, DetailsForm, NameForm, UsernameForm
from accounts.models import User
from accounts.policy import field_editable, get_policy, section
from accounts.reauth import reauthentication_required
from accounts.web import ctx_for

TEMPLATE = "accounts/profile.html"
PROFILE_SECTION = ("name", "avatar", "profile", "username")
# Each card and the policy field that governs it.
CARD_FIELDS = {"name": "name", "details": "profile", "username": "username", "avatar": "avatar"}


def _render(
    request: HttpRequest,
    *,
    card: str | None = None,
    form: BaseForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The whole page, or for htmx only the card that changed."""
    context: dict[str, Any] = {
        "active_section": "profile",
        "editing": card if form is not None else None,
        "forms": {card: form} if card and form is not None else {},
        "avatar_form": (
            form
            if card == "avatar" and form is not None
            else AvatarForm(policy=get_policy(request))
        ),
    }
    template = f"{TEMPLATE}#card-{card}" if card and request.htmx else TEMPLATE  # type: ignore[attr-defined]
    return render(request, template, context, status=status)


def _saved(request: HttpRequest, card: str, message: str) -> HttpResponse:
    if request.htmx:  # type: ignore[attr-defined]
        messages.success(request, message)
        return _render(request, card=card)
    messages.success(request, message)
    return redirect("profile")


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _form_instance(request: HttpRequest) -> User:
    """A copy for a ModelForm to write into while validating, so the signed-in user
    is changed only by the flow, and only when the form is valid."""
    return copy.copy(_user(request))


@require_safe
@login_required
@section(*PROFILE_SECTION)
def profile(request: HttpRequest) -> HttpResponse:
    return _render(request)


@require_safe
@login_required
@section(*PROFILE_SECTION)
def card(request: HttpRequest, card: str) -> HttpResponse:
    """One card in its reading state (htmx "cancel"); without htmx, the page."""
    if card not in CARD_FIELDS or not get_policy(request).visible(CARD_FIELDS[card]):
        raise Http404
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("profile")
    return _render(request, card=card)


# --- Display name ---------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@field_editable("name")
def name_edit(request: HttpRequest) -> HttpResponse:
    form = NameForm(
        request.POST or None, instance=_form_instance(request), policy=get_policy(request)
    )
    if request.method == "POST":
        if form.is_valid():
            flows.name_update(ctx=ctx_for(request), display_name=form.cleaned_data["display_name"])
            return _saved(request, "name", _("Your display name was saved."))
        return _render(request, card="name", form=form, status=400)
    return _render(request, card="name", form=form)


# --- Personal details -----------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@field_editable("profile")
def details_edit(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = DetailsForm(
        request.POST or None, instance=_form_instance(request), policy=get_policy(request)
    )
    if request.method == "POST":
        if form.is_valid():
            flows.details_update(
                ctx=ctx_for(request),
                changes={name: form.cleaned_data[name] for name in DetailsForm.Meta.fields},
            )
            # Answer in the language just chosen.
            if user.language:
                translation.activate(user.language)
                request.LANGUAGE_CODE = user.language
            return _saved(request, "details", _("Your personal details were saved."))
        return _render(request, card="details", form=form, status=400)
    return _render(request, card="details", form=form)


# --- Username -------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@field_editable("username")
@reauthentication_required
def username_edit(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = UsernameForm(request.POST or None, user=user, policy=get_policy(request))
    if request.method == "POST":
        if form.is_valid():
            try:
                flows.username_change(ctx=ctx_for(request), username=form.cleaned_data["username"])
            except flows.UsernameTaken as exc:
                form.add_error("username", str(exc.message))
            else:
                return _saved(request, "username", _("Your username was changed."))
        return _render(request, card="username", form=form, status=400)
    return _render(request, card="username", form=form)


# --- Avatar ---------------------------------------------------------------


@require_POST
@login_required
@field_editable("avatar")
def avatar_upload(request: HttpRequest) -> HttpResponse:
    form = AvatarForm(request.POST, request.FILES, policy=get_policy(request))
    if form.is_valid():
        try:
            flows.avatar_upload(ctx=ctx_for(request), image=form.cleaned_data["avatar"])
        except ValidationError as exc:
            form.add_error("avatar", exc)
        else:
            return _saved(request, "avatar", _("Your picture was saved."))
    return _render(request, card="avatar", form=form, status=400)


@require_POST
@login_required
@field_editable("avatar")
def avatar_delete(request: HttpRequest) -> HttpResponse:
    flows.avatar_remove(ctx=ctx_for(request))
    return _saved(request, "avatar", _("Your picture was removed."))
