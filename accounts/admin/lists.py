"""What the back-office's lists share: a paginator that stays fast at a million
rows, and the second-factor filter."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.selectors.users import (
    COUNT_CAP,
    SearchIds,
    capped_count,
    ids_in_order,
    search_ids,
    users_with_second_factor,
)


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows: beyond that the list says "10,000+" instead of
    scanning the whole table for an exact number on every page."""

    CAP = COUNT_CAP

    @cached_property
    def count(self) -> int:
        return capped_count(self.object_list, self.CAP)  # type: ignore[arg-type]


class CappedIdsPaginator(CappedCountPaginator):
    """For searches: one query reads the count and the ids of the page the list
    shows (``search_ids``: PostgreSQL's key table, for a search alone in date
    order), or the ids of all the matches when there are at most CAP of them
    (``ids_in_order``, or ``search_ids`` from the search's index); a page is then
    read by its ids. A search's index is read once, not once for the count and again
    for the page. With more matches than CAP the count says CAP + 1 ("10,000+") and
    a page is read from the key table, or in order (such a search matches often:
    the page is found soon).

    ``number`` is the page the list will show (the first query reads that page's
    ids from the key table); another page costs one more query."""

    def __init__(self, *args: Any, number: Any = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            self.number = max(int(number), 1)
        except (TypeError, ValueError):
            self.number = 1

    @property
    def _queryset(self) -> QuerySet[Any]:
        return self.object_list  # type: ignore[return-value]

    @cached_property
    def found(self) -> SearchIds | None:
        return search_ids(
            self._queryset,
            offset=(self.number - 1) * self.per_page,
            limit=self.per_page + self.orphans,
            count=True,
            cap=self.CAP,
        )

    @cached_property
    def _key_page(self) -> SearchIds | None:
        """The count and the page ``number``'s ids, when the key table answered."""
        return self.found if self.found is not None and self.found.from_key_table else None

    @cached_property
    def ids(self) -> list[Any] | None:
        """The ids of all the matches, when one query read them all."""
        if self.found is None:
            return ids_in_order(self._queryset, self.CAP)
        page = self._key_page
        if page is None:
            return self.found.ids
        # The key table read one page: all of them when it is the first and only one.
        if self.number == 1 and page.ids is not None and (page.total or 0) <= len(page.ids):
            return page.ids
        return None

    @cached_property
    def count(self) -> int:
        if self._key_page is not None:
            return min(self._key_page.total or 0, self.CAP + 1)
        return len(self.ids) if self.ids is not None else self.CAP + 1

    def page(self, number: Any) -> Page:
        key_page = self._key_page
        if key_page is None and self.ids is None:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        ids: list[Any]
        if key_page is None:
            ids = (self.ids or [])[bottom:top]
        elif number == self.number:
            ids = (key_page.ids or [])[: top - bottom]
        else:
            other = search_ids(self._queryset, offset=bottom, limit=top - bottom, cap=self.CAP)
            ids = (other.ids or []) if other is not None else []
        return Page(self._queryset.filter(pk__in=ids), number, self)


class PlainCheckboxMixin:
    """The list's row checkbox written directly, not through the form renderer's
    template (a third of each row's rendering): the same markup as Django's."""

    def action_checkbox(self, obj: Any) -> SafeString:
        label = format_html(_("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            label,
        )


class IdsChangeList(ChangeList):
    """A list whose paginator read the ids (``CappedIdsPaginator``) shows a single
    page, or all of them, by those ids too, instead of running the search again."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        paginator = self.paginator
        if (
            isinstance(paginator, CappedIdsPaginator)
            and paginator.ids is not None
            and ((self.show_all and self.can_show_all) or not self.multi_page)
        ):
            self.result_list = self.queryset.filter(pk__in=paginator.ids)


class HasSecondFactorFilter(admin.SimpleListFilter):
    title = gettext_lazy("second factor")
    parameter_name = "second_factor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        value = {"yes": True, "no": False}.get(self.value() or "")
        return users_with_second_factor(queryset, value)
