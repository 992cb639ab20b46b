"""What the back-office's lists share: a paginator that stays fast at a million
rows, and the second-factor filter."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.selectors.users import COUNT_CAP, capped_count, users_with_second_factor


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows: beyond that the list says "10,000+" instead of
    scanning the whole table for an exact number on every page."""

    CAP = COUNT_CAP

    @cached_property
    def count(self) -> int:
        return capped_count(self.object_list, self.CAP)  # type: ignore[arg-type]


class HasSecondFactorFilter(admin.SimpleListFilter):
    title = gettext_lazy("second factor")
    parameter_name = "second_factor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        value = {"yes": True, "no": False}.get(self.value() or "")
        return users_with_second_factor(queryset, value)
