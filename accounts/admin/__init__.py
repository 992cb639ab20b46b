"""The back-office (Django admin behind a verified second factor): the user list
and page (``users``), the staff actions on a user (``actions``), the audit log
(``audit``) and the field policy (``policy``). Importing the package registers them."""

from accounts.admin import audit, policy, users
from accounts.admin.lists import CappedCountPaginator, HasSecondFactorFilter

__all__ = ["CappedCountPaginator", "HasSecondFactorFilter", "audit", "policy", "users"]
