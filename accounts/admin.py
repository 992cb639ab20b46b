"""The back-office (Django admin behind a verified second factor)."""

from __future__ import annotations

import csv
import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import AccountPolicy, AuditEvent, User
from accounts.notifications import (
    notify,
    notify_deletion_scheduled,
    notify_restored,
    notify_suspended,
)
from accounts.policy import FIELDS
from accounts.selectors import user_backoffice_overview
from accounts.services.audit import Action, audit_record
from accounts.services.deletion import (
    InvalidTransition,
    account_deletion_schedule,
    account_purge,
)
from accounts.services.mfa import mfa_reset
from accounts.services.moderation import (
    NotAllowed,
    check_can_act,
    user_restore,
    user_sessions_end,
    user_suspend,
)
from accounts.services.policy import policy_update

# --- The user list, fast at a million rows ------------------------------------------------


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows: beyond that the list says "10,000+" instead of
    scanning the whole table for an exact number on every page."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return self.object_list[: self.CAP + 1].count()  # type: ignore[attr-defined,union-attr]


class HasSecondFactorFilter(admin.SimpleListFilter):
    title = gettext_lazy("second factor")
    parameter_name = "second_factor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        # The device tables are small: look users up from them (an index lookup)
        # rather than testing every user row for a device.
        with_factor = (
            TOTPDevice.objects.filter(confirmed=True)
            .values("user_id")
            .union(WebAuthnCredential.objects.filter(confirmed=True).values("user_id"))
        )
        if self.value() == "yes":
            return queryset.filter(pk__in=with_factor)
        if self.value() == "no":
            return queryset.exclude(pk__in=with_factor)
        return queryset


class SuspendForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )
    until = forms.DateTimeField(
        label=gettext_lazy("Until (optional)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=gettext_lazy("Empty: until someone restores the account."),
    )

    def clean_reason(self) -> str:
        value = self.cleaned_data["reason"].strip()
        if not value:
            raise forms.ValidationError(gettext_lazy("A reason is required."))
        return value

    def clean_until(self) -> Any:
        from django.utils import timezone

        value = self.cleaned_data.get("until")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError(gettext_lazy("Choose a time in the future."))
        return value


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean_reason(self) -> str:
        value = self.cleaned_data["reason"].strip()
        if not value:
            raise forms.ValidationError(gettext_lazy("A reason is required."))
        return value


class PurgeForm(forms.Form):
    username = forms.CharField(label=gettext_lazy("Type the username to confirm"), max_length=150)

    def __init__(self, *args: Any, target: User, **kwargs: Any) -> None:
        self.target = target
        super().__init__(*args, **kwargs)

    def clean_username(self) -> str:
        value = self.cleaned_data["username"].strip()
        if value != self.target.username:
            raise forms.ValidationError(gettext_lazy("This is not the account's username."))
        return value


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = (
        "username",
        "email",
        "state",
        "second_factor",
        "last_login",
        "date_joined",
    )
    list_filter = ("state", "is_staff", HasSecondFactorFilter, "date_joined")
    search_fields = ("username", "email", "display_name", "phone")
    search_help_text = gettext_lazy("Username, email address, display name or phone number.")
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        totp = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        keys = WebAuthnCredential.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(has_second_factor=Exists(totp) | Exists(keys))

    @admin.display(
        boolean=True, description=gettext_lazy("second factor"), ordering="has_second_factor"
    )
    def second_factor(self, obj: User) -> bool:
        return bool(getattr(obj, "has_second_factor", False))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deletion goes through the grace period or an explicit purge (below).
        return False

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        """Saves, and records what changed (privileges included) as an audit event."""
        changed = [name for name in form.changed_data if name not in {"groups", "user_permissions"}]
        before: dict[str, Any] = {}
        if change and changed:
            old = User.objects.filter(pk=obj.pk).values(*changed).first() or {}
            before = {k: str(v) for k, v in old.items()}
        super().save_model(request, obj, form, change)
        # The model admin is shared by every request: keep this on the request.
        request._portal_user_changes = (changed, before)  # type: ignore[attr-defined]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        old_groups = set()
        obj = form.instance
        if change:
            old_groups = set(obj.groups.values_list("name", flat=True))
        super().save_related(request, form, formsets, change)
        new_groups = set(obj.groups.values_list("name", flat=True))
        changed, before = getattr(request, "_portal_user_changes", ([], {}))
        data: dict[str, Any] = {}
        if changed:
            data["fields"] = changed
            data["before"] = before
            data["after"] = {name: str(getattr(obj, name)) for name in changed}
        if new_groups != old_groups:
            data["groups_before"] = sorted(old_groups)
            data["groups_after"] = sorted(new_groups)
        if "user_permissions" in form.changed_data:
            data["permissions_changed"] = True
        if data:
            audit_record(
                action=Action.UPDATED_BY_STAFF if change else Action.CREATED_BY_STAFF,
                subject=obj,
                actor=request.user,  # type: ignore[arg-type]
                request=request,
                data=data,
            )

    # --- Extra pages ---------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        from accounts.views.impersonation import impersonate

        wrap = self.admin_site.admin_view
        # No admin password page: a password is set by its owner, or reset by email.
        inherited = [
            pattern
            for pattern in super().get_urls()
            if not str(getattr(pattern, "name", "") or "").endswith("_password_change")
        ]
        return [
            path("<int:pk>/suspend/", wrap(self.suspend_view), name="accounts_user_suspend"),
            path("<int:pk>/restore/", wrap(self.restore_view), name="accounts_user_restore"),
            path(
                "<int:pk>/end-sessions/",
                wrap(self.end_sessions_view),
                name="accounts_user_end_sessions",
            ),
            path("<int:pk>/reset-mfa/", wrap(self.reset_mfa_view), name="accounts_user_reset_mfa"),
            path(
                "<int:pk>/schedule-deletion/",
                wrap(self.schedule_deletion_view),
                name="accounts_user_schedule_deletion",
            ),
            path("<int:pk>/purge/", wrap(self.purge_view), name="accounts_user_purge"),
            path("<int:pk>/impersonate/", wrap(impersonate), name="accounts_user_impersonate"),
            *inherited,
        ]

    def _target(self, request: HttpRequest, pk: int, permission: str) -> User:
        if not request.user.has_perm(f"accounts.{permission}"):
            raise PermissionDenied(_("You do not have the permission for this action."))
        target = get_object_or_404(User, pk=pk)
        try:
            check_can_act(actor=request.user, target=target)  # type: ignore[arg-type]
        except NotAllowed as exc:
            raise PermissionDenied(
                _("You cannot act on your own account, and only superusers act on staff.")
            ) from exc
        return target

    def _form_page(
        self, request: HttpRequest, target: User, form: forms.Form, title: str, button: str
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "target": target,
            "form": form,
            "button": button,
        }
        return TemplateResponse(
            request,
            "admin/accounts/user/action_form.html",
            context,
            status=400 if request.method == "POST" else 200,
        )

    def _done(self, request: HttpRequest, target: User, message: str) -> HttpResponse:
        messages.success(request, message)
        return redirect("admin:accounts_user_change", target.pk)

    def suspend_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self._target(request, pk, "suspend_user")
        form = SuspendForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                user = user_suspend(
                    user=target,
                    actor=request.user,  # type: ignore[arg-type]
                    reason=form.cleaned_data["reason"],
                    until=form.cleaned_data["until"],
                    request=request,
                )
            except InvalidTransition:
                messages.error(request, _("Only an active account can be suspended."))
                return redirect("admin:accounts_user_change", target.pk)
            notify_suspended(user)
            return self._done(
                request, user, _("The account was suspended and signed out everywhere.")
            )
        return self._form_page(
            request, target, form, _("Suspend %(user)s") % {"user": target}, _("Suspend")
        )

    def restore_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self._target(request, pk, "suspend_user")
        if request.method != "POST":
            return self._form_page(
                request,
                target,
                forms.Form(),
                _("Restore %(user)s") % {"user": target},
                _("Restore"),
            )
        try:
            user = user_restore(user=target, actor=request.user, request=request)  # type: ignore[arg-type]
        except InvalidTransition:
            messages.error(request, _("This account is already active."))
            return redirect("admin:accounts_user_change", target.pk)
        notify_restored(user)
        return self._done(request, user, _("The account was restored."))

    def end_sessions_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self._target(request, pk, "end_user_sessions")
        if request.method != "POST":
            return self._form_page(
                request,
                target,
                forms.Form(),
                _("End every session of %(user)s") % {"user": target},
                _("End every session"),
            )
        count = user_sessions_end(user=target, actor=request.user, request=request)  # type: ignore[arg-type]
        return self._done(request, target, _("%(count)d session(s) ended.") % {"count": count})

    def reset_mfa_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self._target(request, pk, "reset_user_mfa")
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            mfa_reset(
                user=target,
                actor=request.user,  # type: ignore[arg-type]
                reason=form.cleaned_data["reason"],
                request=request,
            )
            notify(user=target, event="mfa_reset", request=None)
            return self._done(
                request, target, _("The second factors were removed; the user was told.")
            )
        return self._form_page(
            request,
            target,
            form,
            _("Reset the second factors of %(user)s") % {"user": target},
            _("Reset"),
        )

    def schedule_deletion_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self._target(request, pk, "schedule_user_deletion")
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                user = account_deletion_schedule(
                    user=target,
                    actor=request.user,  # type: ignore[arg-type]
                    request=request,
                    reason=form.cleaned_data["reason"],
                )
            except InvalidTransition:
                messages.error(request, _("Only an active account can be scheduled for deletion."))
                return redirect("admin:accounts_user_change", target.pk)
            notify_deletion_scheduled(user)
            return self._done(request, user, _("The account is scheduled for deletion."))
        return self._form_page(
            request,
            target,
            form,
            _("Schedule the deletion of %(user)s") % {"user": target},
            _("Schedule deletion"),
        )

    def purge_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = self._target(request, pk, "purge_user")
        form = PurgeForm(request.POST or None, target=target)
        if request.method == "POST" and form.is_valid():
            name = account_purge(user=target, actor=request.user, request=request)  # type: ignore[arg-type]
            messages.success(
                request,
                _("The account was deleted. It appears as %(name)s in the audit log.")
                % {"name": name},
            )
            return redirect("admin:accounts_user_changelist")
        return self._form_page(
            request, target, form, _("Delete %(user)s now") % {"user": target}, _("Delete now")
        )

    # --- Bulk actions --------------------------------------------------------------

    @admin.action(description=gettext_lazy("Suspend the selected users"), permissions=["suspend"])
    def suspend_selected(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> HttpResponse | None:
        form = SuspendForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            done, skipped = 0, 0
            for target in queryset:
                try:
                    user = user_suspend(
                        user=target,
                        actor=request.user,  # type: ignore[arg-type]
                        reason=form.cleaned_data["reason"],
                        until=form.cleaned_data["until"],
                        request=request,
                    )
                except (NotAllowed, InvalidTransition):
                    skipped += 1
                    continue
                notify_suspended(user)
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
        done = 0
        for target in queryset:
            try:
                user = user_restore(user=target, actor=request.user, request=request)  # type: ignore[arg-type]
            except (NotAllowed, InvalidTransition):
                continue
            notify_restored(user)
            done += 1
        self.message_user(request, _("%(done)d account(s) restored.") % {"done": done})

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.suspend_user")

    # --- The user's page --------------------------------------------------------------

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra = dict(extra_context or {})
        try:
            target = User.objects.get(pk=int(object_id))
        except (User.DoesNotExist, ValueError):
            target = None
        if target is not None:
            extra["overview"] = user_backoffice_overview(user=target)
            perms = {
                name: request.user.has_perm(f"accounts.{name}")
                for name in (
                    "suspend_user",
                    "end_user_sessions",
                    "reset_user_mfa",
                    "schedule_user_deletion",
                    "purge_user",
                    "impersonate_user",
                )
            }
            try:
                check_can_act(actor=request.user, target=target)  # type: ignore[arg-type]
                may_act = True
            except NotAllowed:
                may_act = False
            extra["actions_allowed"] = {k: v and may_act for k, v in perms.items()}
        return super().change_view(request, object_id, form_url, extra)


# --- The audit log ------------------------------------------------------------------------


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


class _ActionFilter(admin.SimpleListFilter):
    title = gettext_lazy("action")
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return sorted(Action.LABELS.items(), key=lambda item: str(item[1]))

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent]
    ) -> QuerySet[AuditEvent]:
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included."""

    list_display = (
        "created_at",
        "action_label",
        "subject_label",
        "actor",
        "impersonator",
        "ip_address",
    )
    list_filter = (_ActionFilter, ("created_at", admin.DateFieldListFilter))
    search_fields = ("=subject__username", "=actor__username", "=subject_label")
    search_help_text = gettext_lazy("Exact username of the subject or the actor.")
    list_select_related = ("actor", "impersonator")
    date_hierarchy = "created_at"
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    actions = None
    readonly_fields = (
        "created_at", "action", "actor", "subject", "subject_label", "impersonator",
        "ip_address", "user_agent", "data",
    )  # fmt: skip
    change_list_template = "admin/accounts/auditevent/change_list.html"

    @admin.display(description=gettext_lazy("action"), ordering="action")
    def action_label(self, obj: AuditEvent) -> str:
        return str(Action.LABELS.get(obj.action, obj.action))

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        qs = super().get_queryset(request)
        for key in ("subject", "actor"):
            value = request.GET.get(f"{key}__id__exact")
            if value and value.isdigit():
                qs = qs.filter(**{f"{key}_id": int(value)})
        return qs

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        if lookup in {"subject__id__exact", "actor__id__exact"}:
            return True
        return super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        return [
            path(
                "export.csv",
                self.admin_site.admin_view(self.export_csv),
                name="accounts_auditevent_export",
            ),
            *super().get_urls(),
        ]

    def export_csv(self, request: HttpRequest) -> StreamingHttpResponse:
        """The filtered list (same filters and search as the page) as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(_("This filter is not valid."))  # type: ignore[return-value]
        rows = (
            changelist.get_queryset(request)
            .select_related("actor", "impersonator")
            .iterator(chunk_size=2000)
        )

        class Echo:
            def write(self, value: str) -> str:
                return value

        writer = csv.writer(Echo())

        def stream() -> Any:
            yield writer.writerow(
                [
                    "time",
                    "action",
                    "subject",
                    "actor",
                    "impersonator",
                    "ip_address",
                    "user_agent",
                    "data",
                ]
            )
            for event in rows:
                yield writer.writerow(
                    [
                        event.created_at.isoformat(),
                        event.action,
                        _cell(event.subject_label),
                        _cell(event.actor.username if event.actor else ""),
                        _cell(event.impersonator.username if event.impersonator else ""),
                        event.ip_address or "",
                        _cell(event.user_agent),
                        _cell(json.dumps(event.data, ensure_ascii=False, sort_keys=True)),
                    ]
                )

        response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit-events.csv"'
        return response


# --- The field policy -----------------------------------------------------------------


@admin.register(AccountPolicy)
class AccountPolicyAdmin(admin.ModelAdmin):
    """One page: the single policy row. Saving goes through the policy service
    (audit event with before/after, cache replaced)."""

    fieldsets = (
        (None, {"fields": ("enabled",)}),
        (
            gettext_lazy("What users may see and change"),
            {
                "description": gettext_lazy(
                    "Off: hidden, and its pages answer “not found”. Read-only: shown, "
                    "without controls; any change is refused. Edit: shown and changeable."
                ),
                "fields": FIELDS,
            },
        ),
    )
    readonly_fields = ("updated_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        AccountPolicy.objects.get_or_create(pk=1)
        return redirect("admin:accounts_accountpolicy_change", 1)

    def save_model(self, request: HttpRequest, obj: AccountPolicy, form: Any, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in ("enabled", *FIELDS)}
        policy_update(actor=request.user, values=values, request=request)  # type: ignore[arg-type]
