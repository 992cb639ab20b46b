"""Personal access tokens: the user's list, making one (its text shown once), and
revoking one. Policy field ``tokens``; each write is one flow
(``accounts.flows.tokens``) and needs a recent re-authentication.

A new token's text is kept in the session only until the next page shows it: that
page takes it out of the session, so reloading it (or replaying its GET) shows
nothing."""

from __future__ import annotations

import time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from accounts.flows import tokens as flows
from accounts.forms import TokenForm, blank_token_form_fields
from accounts.models import User
from accounts.policy import field_editable, get_policy, section
from accounts.reauth import reauthentication_required
from accounts.selectors.tokens import token_is_live, token_shown_prefix, user_tokens
from accounts.web import ctx_for

NEW_TOKEN_SESSION_KEY = "portal_new_access_token"
# A token made longer ago than this is not shown, even if its page was never opened.
NEW_TOKEN_SHOWN_FOR = 10 * 60  # seconds


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _page(request: HttpRequest, form: TokenForm | None, status: int = 200) -> HttpResponse:
    """The page, with ``form`` as it was sent back, or a blank one (None)."""
    policy = get_policy(request)
    blank = (
        blank_token_form_fields(user=_user(request), policy=policy)
        if form is None and "tokens" in policy.editable_fields
        else ""
    )
    rows = [
        {
            "token": token,
            "shown_prefix": token_shown_prefix(token),
            "live": token_is_live(token),
        }
        for token in user_tokens(user=_user(request))
    ]
    return render(
        request,
        "accounts/tokens.html",
        {"rows": rows, "form": form, "blank_form": blank, "active_section": "tokens"},
        status=status,
    )


@require_safe
@login_required
@section("tokens")
def tokens(request: HttpRequest) -> HttpResponse:
    return _page(request, None)


@require_POST
@login_required
@field_editable("tokens")
@reauthentication_required
def token_create(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = TokenForm(request.POST, policy=get_policy(request), user=user)
    if form.is_valid():
        try:
            new = flows.token_create(ctx=ctx_for(request), **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        except flows.TooManyTokens as exc:
            form.add_error(None, str(exc.message))
        else:
            request.session[NEW_TOKEN_SESSION_KEY] = {
                "id": new.token.pk,
                "name": new.token.name,
                "secret": new.secret,
                "at": time.time(),
            }
            return redirect("tokens_new")
    return _page(request, form, status=400)


@require_safe
@login_required
@section("tokens")
def tokens_new(request: HttpRequest) -> HttpResponse:
    """The token just made, once: it leaves the session as this page is shown."""
    stash = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    if not stash or time.time() - float(stash.get("at", 0)) > NEW_TOKEN_SHOWN_FOR:
        messages.info(
            request,
            _("A token is shown only once, right after it is made. Make a new one if you lost it."),
        )
        return redirect("tokens")
    return render(
        request,
        "accounts/tokens_new.html",
        {"name": stash["name"], "secret": stash["secret"], "active_section": "tokens"},
    )


@require_POST
@login_required
@field_editable("tokens")
@reauthentication_required
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    # Someone else's token, or an unknown id, is a 404 (accounts.web).
    token = flows.token_revoke(ctx=ctx_for(request), pk=pk)
    messages.success(request, _("The token “%(name)s” was revoked.") % {"name": token.name})
    return redirect("tokens")
