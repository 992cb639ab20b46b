from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _

from accounts.models import AccountPolicy, User
from accounts.policy import FIELDS
from accounts.services.policy import policy_update


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "state", "is_staff", "last_login", "date_joined")
    list_filter = ("state", "is_staff", "is_superuser", "date_joined")
    search_fields = ("username", "email", "display_name", "phone")
    readonly_fields = ("state", "state_changed_at", "is_active", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (
            _("Profile"),
            {
                "fields": (
                    "display_name",
                    "first_name",
                    "last_name",
                    "email",
                    "phone",
                    "phone_verified",
                    "avatar",
                    "language",
                    "time_zone",
                )
            },
        ),
        (
            _("State"),
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
            _("Permissions"),
            {"fields": ("is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )


@admin.register(AccountPolicy)
class AccountPolicyAdmin(admin.ModelAdmin):
    """One page: the single policy row. Saving goes through the policy service
    (audit event with before/after, cache replaced)."""

    fieldsets = (
        (None, {"fields": ("enabled",)}),
        (
            _("What users may see and change"),
            {
                "description": _(
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
