"""The pages of a change proven by a code (email, phone): one factory builds the
start page, the code page, "send a new code" and "cancel". Each page only turns
the form into a flow call (``accounts.flows.verified_change``) and the result into
a message and a redirect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import Promise
from django.views.decorators.http import require_http_methods, require_POST

from accounts.flows import verified_change as vc
from accounts.forms import CodeForm
from accounts.models import User
from accounts.policy import field_editable, get_policy, section
from accounts.reauth import reauthentication_required
from accounts.services.codes import code_minutes
from accounts.views.codes import code_error
from accounts.web import ctx_for

View = Callable[..., HttpResponse]


@dataclass(frozen=True, kw_only=True)
class ChangePage:
    """What differs between the email and the phone pages: names and texts.

    Messages with a placeholder use ``%(email)s`` or ``%(phone)s``; both are given
    the target as shown."""

    spec: vc.ChangeSpec
    # URL names: ``<name>``, ``<name>_confirm``, ``<name>_resend``, ``<name>_cancel``.
    name: str
    form_class: type[forms.Form]
    show: Callable[[str], str] = str
    title: Promise
    current_title: Promise
    change_title: Promise
    # The heading when there is no value yet (default: ``change_title``).
    add_title: Promise | None = None
    change_help: Promise
    pending_text: Promise  # %(pending)s
    confirm_title: Promise
    confirm_text: Promise  # %(pending)s, %(minutes)d
    sent: Promise
    resent: Promise
    changed: Promise
    cancelled: Promise
    nothing_pending: Promise
    # The "remove" button under the current value: its URL name and label.
    remove_url: str = ""
    remove_label: Promise | None = None


class ChangeViews(NamedTuple):
    page: View
    confirm: View
    resend: View
    cancel: View


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _say(text: Promise, shown: str) -> str:
    return str(text) % {"email": shown, "phone": shown}


def verified_change_views(cfg: ChangePage) -> ChangeViews:
    spec, field = cfg.spec, cfg.spec.field
    confirm_name, resend_name, cancel_name = (
        f"{cfg.name}_confirm",
        f"{cfg.name}_resend",
        f"{cfg.name}_cancel",
    )

    def texts(**extra: Any) -> dict[str, Any]:
        return {"page": cfg, "field": field, "active_section": cfg.name, **extra}

    def start_page(request: HttpRequest, form: forms.Form, status: int = 200) -> HttpResponse:
        user = _user(request)
        current = spec.current(user)
        pending = vc.pending(user, spec)
        context = texts(
            form=form,
            current=cfg.show(current),
            change_title=cfg.change_title if current or not cfg.add_title else cfg.add_title,
            pending_text=(
                str(cfg.pending_text) % {"pending": cfg.show(pending)} if pending else ""
            ),
            start_url=reverse(cfg.name),
            confirm_url=reverse(confirm_name),
            remove_url=reverse(cfg.remove_url) if cfg.remove_url and current else "",
        )
        return render(request, "accounts/verified_change.html", context, status=status)

    def new_form(request: HttpRequest, data: Any = None) -> forms.Form:
        return cfg.form_class(data, user=_user(request), policy=get_policy(request))  # type: ignore[call-arg]

    @field_editable(field)
    @reauthentication_required
    def start(request: HttpRequest) -> HttpResponse:
        form = new_form(request, request.POST)
        if not form.is_valid():
            return start_page(request, form, status=400)
        try:
            started = vc.start(ctx=ctx_for(request), spec=spec, target=form.cleaned_data[field])
        except vc.InvalidTarget as exc:
            form.add_error(field, str(exc.message))
            return start_page(request, form, status=400)
        messages.info(request, _say(cfg.sent, cfg.show(started.target)))
        return redirect(confirm_name)

    @require_http_methods(["GET", "HEAD", "POST"])
    @login_required
    @section(field)
    def page(request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            return start(request)
        return start_page(request, new_form(request))

    @require_http_methods(["GET", "HEAD", "POST"])
    @login_required
    @field_editable(field)
    def confirm(request: HttpRequest) -> HttpResponse:
        pending = vc.pending(_user(request), spec)
        if pending is None:
            messages.info(request, str(cfg.nothing_pending))
            return redirect(cfg.name)
        form = CodeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            outcome = vc.confirm(ctx=ctx_for(request), spec=spec, code=form.cleaned_data["code"])
            if outcome.ok:
                messages.success(request, _say(cfg.changed, cfg.show(outcome.after)))
                return redirect(cfg.name)
            form.add_error("code", code_error(outcome.result))
        context = texts(
            form=form,
            confirm_text=str(cfg.confirm_text)
            % {"pending": cfg.show(pending), "minutes": code_minutes()},
            confirm_url=reverse(confirm_name),
            resend_url=reverse(resend_name),
            cancel_url=reverse(cancel_name),
        )
        status = 400 if request.method == "POST" else 200
        return render(request, "accounts/verified_change_confirm.html", context, status=status)

    @require_POST
    @login_required
    @field_editable(field)
    def resend(request: HttpRequest) -> HttpResponse:
        started = vc.resend(ctx=ctx_for(request), spec=spec)
        if started is None:
            return redirect(cfg.name)
        messages.info(request, _say(cfg.resent, cfg.show(started.target)))
        return redirect(confirm_name)

    @require_POST
    @login_required
    @field_editable(field)
    def cancel(request: HttpRequest) -> HttpResponse:
        vc.cancel(ctx=ctx_for(request), spec=spec)
        messages.info(request, str(cfg.cancelled))
        return redirect(cfg.name)

    return ChangeViews(page=page, confirm=confirm, resend=resend, cancel=cancel)
