"""The email section: change the primary address, proven by a code."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from accounts.flows.email_change import EMAIL_CHANGE
from accounts.forms import EmailChangeForm
from accounts.views.verified import ChangePage, verified_change_views

PAGE = ChangePage(
    spec=EMAIL_CHANGE,
    name="email",
    form_class=EmailChangeForm,
    title=_("Email address"),
    current_title=_("Current address"),
    change_title=_("Change your email address"),
    change_help=_("You will be asked to confirm it's you first."),
    pending_text=_("A change to %(pending)s is waiting for its code."),
    confirm_title=_("Confirm your new email address"),
    confirm_text=_("Enter the code we sent to %(pending)s. It expires after %(minutes)d minutes."),
    sent=_("We sent a code to %(email)s."),
    resent=_("We sent a new code to %(email)s."),
    changed=_("Your email address is now %(email)s."),
    cancelled=_("The email change was cancelled."),
    nothing_pending=_("There is no email change waiting for confirmation."),
)

email, email_confirm, email_resend, email_cancel = verified_change_views(PAGE)
