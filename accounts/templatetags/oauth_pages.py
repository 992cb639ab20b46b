"""The provider's pages (``templates/idp/oidc/``): an error in words a user reads.

allauth's error page shows the protocol library's own description ("Invalid
client_id parameter value."), in English; the portal says what happened."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _
from oauthlib.oauth2.rfc6749 import errors

from accounts.views.oauth import PortalError

register = template.Library()

_UNKNOWN_APP = (errors.InvalidClientIdError, errors.MissingClientIdError)
_BAD_RETURN_ADDRESS = (
    errors.InvalidRedirectURIError,
    errors.MissingRedirectURIError,
    errors.MismatchingRedirectURIError,
)


@register.simple_tag
def oauth_error_message(error: Any = None, form: Any = None) -> str:
    if isinstance(error, PortalError):
        return str(error.description)
    if isinstance(error, _UNKNOWN_APP):
        return _(
            "This app is not registered here, so it cannot use your account. The link "
            "that brought you here may be wrong or out of date."
        )
    if isinstance(error, _BAD_RETURN_ADDRESS):
        return _(
            "The app did not give an address to send you back to that it has "
            "registered, so you cannot be sent back to it."
        )
    if form is not None:
        return _(
            "The app asked to send you to an address it has not registered once you are signed out."
        )
    return _("The app's request is incomplete or not valid.")
