"""The user list and a user's page in the back-office."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.actor import Actor
from accounts.admin.actions import ACTIONS, action_urls
from accounts.admin.forms import suspend_form
from accounts.admin.lists import (
    CappedCountPaginator,
    CappedIdsPaginator,
    HasSecondFactorFilter,
    IdsChangeList,
    PlainCheckboxMixin,
)
from accounts.admin_site import GuardedListMixin
from accounts.flows import moderation
from accounts.flows.errors import FlowError
from accounts.models import User
from accounts.selectors.users import (
    USER_SEARCH_FIELDS,
    user_backoffice_overview,
    users_annotated,
    users_search,
)
from accounts.staff_forms import StaffUserChangeForm, StaffUserCreationForm
from accounts.user_search import search_phrase
from accounts.web import actor_from_request

# The links on a user's page: each action's permission, and impersonation's.
PAGE_PERMISSIONS = (*dict.fromkeys(a.permission for a in ACTIONS), "impersonate_user")


@admin.register(User)
class UserAdmin(GuardedListMixin, PlainCheckboxMixin, DjangoUserAdmin):
    # The portal's username rules, as on the Management API (``accounts.staff_forms``).
    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    list_display = (
        "username",
        "email",
        "state",
        "second_factor",
        "last_login",
        "date_joined",
    )
    list_filter = ("state", "is_staff", HasSecondFactorFilter, "date_joined")
    search_fields = USER_SEARCH_FIELDS
    search_help_text = gettext_lazy(
        "The beginning of a username, email address, phone number or name, or of any "
        "word in them; or an id."
    )
    ordering = ("-date_joined",)
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    actions = ["suspend_selected", "restore_selected"]
    change_form_template = "admin/accounts/user/change_form.html"
    # Identity (email, phone) changes only through the user's own proven flows; the
    # password too (no admin password page): staff cannot take over an account.
    readonly_fields = (
        "email",
        "phone",
        "phone_verified",
        "state",
        "state_changed_at",
        "state_reason",
        "suspended_until",
        "deletion_scheduled_for",
        "is_active",
        "last_login",
        "date_joined",
    )
    fieldsets = (
        (None, {"fields": ("username",)}),
        (
            gettext_lazy("Profile"),
            {
                "fields": (
                    "display_name",
                    "first_name",
                    "last_name",
                    "email",
                    "phone",
                    "phone_verified",
                    "language",
                    "time_zone",
                )
            },
        ),
        (
            gettext_lazy("State"),
            {
                "fields": (
                    "state",
                    "state_changed_at",
                    "state_reason",
                    "suspended_until",
                    "deletion_scheduled_for",
                    "is_active",
                )
            },
        ),
        (
            gettext_lazy("Permissions"),
            {"fields": ("is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (gettext_lazy("Important dates"), {"fields": ("last_login", "date_joined")}),
    )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Other staff and superusers are changed by superusers only (the flow
        refuses it too); staff may still view them."""
        if not super().has_change_permission(request, obj):
            return False
        if obj is None or obj.pk == request.user.pk:
            return True
        actor = request.user if isinstance(request.user, User) else None
        return actor is not None and moderation.may_act_on(Actor(user=actor), obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """The privileges are shown read-only to anyone but a superuser, and to a
        superuser on their own account; the form then ignores any posted value, and
        the flow refuses a change that gets through another way."""
        fields = tuple(super().get_readonly_fields(request, obj))
        actor = request.user if isinstance(request.user, User) else None
        if moderation.may_change_privileges(actor, obj):
            return fields
        return fields + moderation.PRIVILEGE_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return users_annotated(super().get_queryset(request))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[IdsChangeList]:
        return IdsChangeList

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[User],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> CappedCountPaginator:
        if search_phrase(request.GET.get(SEARCH_VAR, "")):
            return CappedIdsPaginator(
                queryset,
                per_page,
                orphans,
                allow_empty_first_page,
                number=request.GET.get(PAGE_VAR, 1),
            )
        return CappedCountPaginator(queryset, per_page, orphans, allow_empty_first_page)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[User], search_term: str
    ) -> tuple[QuerySet[User], bool]:
        # The shared search (``search_fields`` only shows the box): one indexed
        # condition, and the same answer as the Management API's.
        return users_search(queryset, search_term), False

    @admin.display(
        boolean=True, description=gettext_lazy("second factor"), ordering="has_second_factor"
    )
    def second_factor(self, obj: User) -> bool:
        return bool(getattr(obj, "has_second_factor", False))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deletion goes through the grace period or an explicit purge (the actions).
        return False

    # --- Staff edits: saved, with groups and permissions, by one flow ------------------

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        """Nothing yet: ``save_related`` saves the fields and the privileges together
        (``accounts.flows.moderation.save_user_by_staff``), and audits them."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = form.cleaned_data
        moderation.save_user_by_staff(
            ctx=actor_from_request(request, surface="admin", subject=form.instance),
            user=form.instance,
            changed=form.changed_data,
            groups=data.get("groups"),
            permissions=data.get("user_permissions"),
        )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    # --- Extra pages ---------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        from accounts.views.impersonation import impersonate, impersonate_by_link

        wrap = self.admin_site.admin_view
        # No admin password page: a password is set by its owner, or reset by email.
        inherited = [
            pattern
            for pattern in super().get_urls()
            if not str(getattr(pattern, "name", "") or "").endswith("_password_change")
        ]
        extra: list[URLPattern] = [
            *action_urls(self),
            path("<int:pk>/impersonate/", wrap(impersonate), name="accounts_user_impersonate"),
            # A single-use link asked for through the Management API.
            path(
                "impersonate/<str:token>/",
                wrap(impersonate_by_link),
                name="accounts_user_impersonate_link",
            ),
        ]
        return [*extra, *inherited]

    # --- Bulk actions --------------------------------------------------------------

    @admin.action(description=gettext_lazy("Suspend the selected users"), permissions=["suspend"])
    def suspend_selected(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> HttpResponse | None:
        form = suspend_form(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            staff = actor_from_request(request, surface="admin")
            done, skipped = 0, 0
            for target in queryset:
                try:
                    moderation.suspend_user(
                        ctx=staff.on(target),
                        reason=form.cleaned_data["reason"],
                        until=form.cleaned_data["until"],
                    )
                except FlowError:
                    skipped += 1
                    continue
                done += 1
            self.message_user(
                request,
                _(
                    "%(done)d account(s) suspended, %(skipped)d skipped "
                    "(yourself, staff, or not active)."
                )
                % {"done": done, "skipped": skipped},
            )
            return None
        return render(
            request,
            "admin/accounts/user/suspend_selected.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": _("Suspend the selected users"),
                "form": form,
                "queryset": queryset,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
            status=400 if form.is_bound else 200,
        )

    @admin.action(description=gettext_lazy("Restore the selected users"), permissions=["suspend"])
    def restore_selected(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        staff = actor_from_request(request, surface="admin")
        done = 0
        for target in queryset:
            try:
                moderation.restore_user(ctx=staff.on(target))
            except FlowError:
                continue
            done += 1
        self.message_user(request, _("%(done)d account(s) restored.") % {"done": done})

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.suspend_user")

    # --- The user's page --------------------------------------------------------------

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra = dict(extra_context or {})
        target = self.get_object(request, object_id)
        if target is not None:
            extra["overview"] = user_backoffice_overview(user=target)
            may_act = moderation.may_act_on(actor_from_request(request, surface="admin"), target)
            extra["actions_allowed"] = {
                name: may_act and request.user.has_perm(f"accounts.{name}")
                for name in PAGE_PERMISSIONS
            }
        return super().change_view(request, object_id, form_url, extra)
