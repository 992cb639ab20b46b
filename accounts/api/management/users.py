"""Reading users: the list (the back-office list's own selector: the same search,
filters and indexes, keyset paging) and one account."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Field, Query, Router, Schema

from accounts.access import access_user_for_staff, staff_holds_any
from accounts.api.management.auth import MANAGEMENT_AUTH, staff_ctx
from accounts.api.management.schemas import ManagedUser, managed_user, managed_user_data
from accounts.api.schemas import COMMON_ERRORS
from accounts.flows.errors import AccessDenied
from accounts.selectors.users import user_list, user_page

router = Router(tags=["management"], auth=MANAGEMENT_AUTH)

VIEW = "accounts.view_user"
# The back-office lets "view" or "change" read its user list.
LIST_PERMISSIONS = (VIEW, "accounts.change_user")
CURSOR_SALT = "accounts.api.management.users"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
BAD_CURSOR = _("This cursor is not valid. Start again from the first page.")
BAD_TIME = _("Enter a date and time such as 2026-12-31T23:59:00Z.")
Ordering = Literal["-date_joined", "date_joined", "username", "-username"]
State = Literal["active", "suspended", "pending_deletion"]
JOINED_AFTER = Query(
    None, description="Only users who joined after this time (UTC without a zone)."
)


class UserPageOut(Schema):
    items: list[ManagedUser]
    next_cursor: str | None = Field(
        description=(
            "Send it as `cursor` (with the same filters) for the next page; null on the last."
        )
    )


def _cursor(ordering: str, after: tuple[Any, int]) -> str:
    value, pk = after
    if isinstance(value, datetime):
        value = value.isoformat()
    return signing.dumps([ordering, value, pk], salt=CURSOR_SALT)


def _after(cursor: str, ordering: str) -> tuple[Any, int]:
    try:
        sort, value, pk = signing.loads(cursor, salt=CURSOR_SALT)
        if sort != ordering or not isinstance(pk, int) or not isinstance(value, str):
            raise ValueError(cursor)
        if ordering.endswith("date_joined"):
            return datetime.fromisoformat(value), pk
        return value, pk
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise ValidationError({"cursor": [BAD_CURSOR]}) from exc


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValidationError({"joined_after": [BAD_TIME]}) from exc


@router.get("/users", response={200: UserPageOut, **COMMON_ERRORS})
def users_list(
    request: HttpRequest,
    search: str = Query(
        "",
        max_length=200,
        description=(
            "The beginning of a username, email address, phone number or name, or of "
            "any word in them; or an id (the back-office's search)."
        ),
    ),
    state: State | None = None,
    has_second_factor: bool | None = None,
    joined_after: datetime | None = JOINED_AFTER,
    ordering: Ordering = "-date_joined",
    cursor: str | None = Query(None, max_length=500),
    page_size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
) -> Any:
    """Users, as the back-office's user list finds them (needs its permission)."""
    if not staff_holds_any(staff_ctx(request).user, LIST_PERMISSIONS):
        raise AccessDenied(staff=True)
    if "\x00" in search:
        raise ValidationError({"search": [_("Remove the control characters.")]})
    found = user_list(
        search=search,
        state=state,
        second_factor=has_second_factor,
        joined_after=_utc(joined_after),
        ordering=ordering,
    )
    page = user_page(
        found,
        ordering=ordering,
        after=_after(cursor, ordering) if cursor else None,
        size=page_size,
    )
    return {
        "items": [managed_user_data(user) for user in page.rows],
        "next_cursor": _cursor(ordering, page.next_after) if page.next_after else None,
    }


@router.get("/users/{user_id}", response={200: ManagedUser, **COMMON_ERRORS})
def user_get(request: HttpRequest, user_id: int) -> Any:
    """One account, as the back-office shows it (needs the "view user" permission)."""
    target = access_user_for_staff(staff_ctx(request), user_id, VIEW)
    return managed_user(target.pk)
