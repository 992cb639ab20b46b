from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts.models import User


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
