"""The field policy's page: the single policy row."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy

from accounts.access import staff_holds_any
from accounts.flows.policy import READ_PERMISSIONS, policy_update
from accounts.models import AccountPolicy
from accounts.policy import FIELDS
from accounts.services.policy import policy_row
from accounts.web import actor_from_request


@admin.register(AccountPolicy)
class AccountPolicyAdmin(admin.ModelAdmin):
    """One page: the single policy row. Saving goes through the policy flow
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

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The Management API's policy reading asks the same question.
        return staff_holds_any(request.user, READ_PERMISSIONS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return redirect("admin:accounts_accountpolicy_change", policy_row().pk)

    def save_model(self, request: HttpRequest, obj: AccountPolicy, form: Any, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in ("enabled", *FIELDS)}
        policy_update(ctx=actor_from_request(request, surface="admin"), values=values)
