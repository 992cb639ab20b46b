"""The back-office (Django admin behind a verified second factor): the user list
and page (``users``), the staff actions on a user (``actions``), the audit log
(``audit``), the field policy (``policy``) and the OAuth apps (``oauth_apps``).
Importing the package registers them."""

from accounts.admin import audit, oauth_apps, policy, users
from accounts.admin.lists import CappedCountPaginator, HasSecondFactorFilter

__all__ = [
    "CappedCountPaginator",
    "HasSecondFactorFilter",
    "audit",
    "oauth_apps",
    "policy",
    "users",
]
