"""Staff actions on one user, table-driven: each entry names its permission, its
form, the flow it calls and the message it leaves. One view runs them all:
permission and access check, form, flow, message and redirect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext as _

from accounts.access import access_user_for_staff
from accounts.actor import Actor
from accounts.admin.forms import confirm_form, purge_form, reason_form, suspend_form
from accounts.flows import moderation
from accounts.flows.errors import AccessDenied, FlowError
from accounts.models import User
from accounts.web import actor_from_request

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin


@dataclass(frozen=True, kw_only=True)
class StaffAction:
    slug: str  # the URL segment; the URL name is accounts_user_<slug with _>
    permission: str  # a codename of the accounts app
    form: Callable[..., forms.Form]
    flow: Callable[[Actor, dict[str, Any]], Any]
    title: Callable[[], str]  # "… %(user)s"
    button: Callable[[], str]
    done: Callable[[Any], str]  # the success message, from the flow's result
    to_list: bool = False  # after success: the user list instead of the user's page

    @property
    def url_name(self) -> str:
        return "accounts_user_" + self.slug.replace("-", "_")


ACTIONS: tuple[StaffAction, ...] = (
    StaffAction(
        slug="suspend",
        permission="suspend_user",
        form=suspend_form,
        flow=lambda ctx, data: moderation.suspend_user(
            ctx=ctx, reason=data["reason"], until=data["until"]
        ),
        title=lambda: _("Suspend %(user)s"),
        button=lambda: _("Suspend"),
        done=lambda result: _("The account was suspended and signed out everywhere."),
    ),
    StaffAction(
        slug="restore",
        permission="suspend_user",
        form=confirm_form,
        flow=lambda ctx, data: moderation.restore_user(ctx=ctx),
        title=lambda: _("Restore %(user)s"),
        button=lambda: _("Restore"),
        done=lambda result: _("The account was restored."),
    ),
    StaffAction(
        slug="end-sessions",
        permission="end_user_sessions",
        form=confirm_form,
        flow=lambda ctx, data: moderation.end_user_sessions(ctx=ctx),
        title=lambda: _("End every session of %(user)s"),
        button=lambda: _("End every session"),
        done=lambda count: _("%(count)d session(s) ended.") % {"count": count},
    ),
    StaffAction(
        slug="reset-mfa",
        permission="reset_user_mfa",
        form=reason_form,
        flow=lambda ctx, data: moderation.reset_user_mfa(ctx=ctx, reason=data["reason"]),
        title=lambda: _("Reset the second factors of %(user)s"),
        button=lambda: _("Reset"),
        done=lambda result: _("The second factors were removed; the user was told."),
    ),
    StaffAction(
        slug="schedule-deletion",
        permission="schedule_user_deletion",
        form=reason_form,
        flow=lambda ctx, data: moderation.schedule_user_deletion(ctx=ctx, reason=data["reason"]),
        title=lambda: _("Schedule the deletion of %(user)s"),
        button=lambda: _("Schedule deletion"),
        done=lambda result: _("The account is scheduled for deletion."),
    ),
    StaffAction(
        slug="purge",
        permission="purge_user",
        form=purge_form,
        flow=lambda ctx, data: moderation.purge_user(ctx=ctx),
        title=lambda: _("Delete %(user)s now"),
        button=lambda: _("Delete now"),
        done=lambda name: (
            _("The account was deleted. It appears as %(name)s in the audit log.") % {"name": name}
        ),
        to_list=True,
    ),
)


def refusal(error: AccessDenied) -> Exception:
    """A flow's access refusal as the back-office answers it."""
    if error.status == 404:
        return Http404()
    return PermissionDenied(error.message or _("You do not have the permission for this action."))


def staff_action_view(
    model_admin: ModelAdmin[User], request: HttpRequest, pk: int, action: StaffAction
) -> HttpResponse:
    staff = actor_from_request(request, surface="admin")
    try:
        # The permission first (403), then the account (404), then whether staff
        # may act on it (403: not themselves, other staff only for superusers).
        target = access_user_for_staff(staff, pk, f"accounts.{action.permission}")
        ctx = actor_from_request(request, surface="admin", subject=target)
        target = moderation.staff_target(ctx, action.permission)
        form = action.form(request.POST if request.method == "POST" else None, target)
        if request.method == "POST" and form.is_valid():
            result = action.flow(ctx, form.cleaned_data)
            messages.success(request, action.done(result))
            if action.to_list:
                return redirect("admin:accounts_user_changelist")
            return redirect("admin:accounts_user_change", target.pk)
    except AccessDenied as error:
        raise refusal(error) from error
    except FlowError as error:
        messages.error(request, str(error.message))
        return redirect("admin:accounts_user_change", pk)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": action.title() % {"user": target},
        "target": target,
        "form": form,
        "button": action.button(),
    }
    return TemplateResponse(
        request,
        "admin/accounts/user/action_form.html",
        context,
        status=400 if request.method == "POST" else 200,
    )


def action_urls(model_admin: ModelAdmin[User]) -> list[URLPattern]:
    wrap = model_admin.admin_site.admin_view

    def view_for(action: StaffAction) -> Callable[..., HttpResponse]:
        def view(request: HttpRequest, pk: int) -> HttpResponse:
            return staff_action_view(model_admin, request, pk, action)

        return wrap(view)

    return [path(f"<int:pk>/{a.slug}/", view_for(a), name=a.url_name) for a in ACTIONS]
