"""The audit log: read-only for everyone, superusers included; exported as CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.access import staff_holds_any
from accounts.admin.lists import CappedCountPaginator
from accounts.admin_site import GuardedListMixin
from accounts.models import AuditEvent
from accounts.selectors.audit import AUDIT_LOG_PERMISSIONS
from accounts.selectors.users import audit_csv_rows
from accounts.services.audit import Action


class _ActionFilter(admin.SimpleListFilter):
    title = gettext_lazy("action")
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return sorted(Action.LABELS.items(), key=lambda item: str(item[1]))

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent]
    ) -> QuerySet[AuditEvent]:
        return queryset.filter(action=self.value()) if self.value() else queryset


class _Echo:
    def write(self, value: str) -> str:
        return value


@admin.register(AuditEvent)
class AuditEventAdmin(GuardedListMixin, admin.ModelAdmin):
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
    # A user's page links to the events about them and to those they caused.
    extra_lookups = frozenset({"subject__id__exact", "actor__id__exact"})

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

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The Management API's audit events ask the same question.
        return staff_holds_any(request.user, AUDIT_LOG_PERMISSIONS)

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

    def export_csv(self, request: HttpRequest) -> HttpResponseBase:
        """The filtered list (same filters and search as the page) as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(_("This filter is not valid."))
        writer = csv.writer(_Echo())

        def stream() -> Iterator[Any]:
            for row in audit_csv_rows(changelist.get_queryset(request)):
                yield writer.writerow(row)

        response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit-events.csv"'
        return response
