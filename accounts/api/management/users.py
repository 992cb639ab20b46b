"""Reading users: one account (the list comes with the back-office's selector)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from accounts.access import access_user_for_staff
from accounts.api.management.auth import MANAGEMENT_AUTH, staff_ctx
from accounts.api.management.schemas import ManagedUser, managed_user
from accounts.api.schemas import COMMON_ERRORS

router = Router(tags=["management"], auth=MANAGEMENT_AUTH)

VIEW = "accounts.view_user"


@router.get("/users/{user_id}", response={200: ManagedUser, **COMMON_ERRORS})
def user_get(request: HttpRequest, user_id: int) -> Any:
    """One account, as the back-office shows it (needs the "view user" permission)."""
    target = access_user_for_staff(staff_ctx(request), user_id, VIEW)
    return managed_user(target.pk)
