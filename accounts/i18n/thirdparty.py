"""Messages that django-otp-webauthn shows users and does not translate into
French. Listing them here puts them in the portal's catalogue (makemessages),
which Django reads before the libraries' own."""

from django.utils.translation import gettext_noop as _

MESSAGES = [
    _("Error processing WebAuthn request."),
    _("Malformed request. JSON not parsable."),
    _(
        "State is missing or invalid. Please begin the operation first before trying to "
        "complete it."
    ),
    _("Unprocessable Entity"),
    _("Passwordless login is disabled."),
    _("This user account is marked as disabled."),
    _("This Passkey has been marked as disabled."),
    _("The Passkey you tried to use was not found. Perhaps it was removed?"),
    _(
        "The Passkey you tried to use does not belong to the currently logged-in user. Try "
        "using a different Passkey or logout first to use this Passkey."
    ),
    _("Authentication required."),
    _("User is not verified."),
    _(
        "You must verify your identity first with an existing MFA device before you can "
        "register a new passkey."
    ),
]
