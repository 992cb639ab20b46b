"""The phone section: add, change or remove the number, proven by a code by SMS."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.flows import phone_change
from accounts.forms import PhoneForm
from accounts.phones import format_phone
from accounts.policy import field_editable
from accounts.reauth import reauthentication_required
from accounts.views.verified import ChangePage, verified_change_views
from accounts.web import ctx_for

PAGE = ChangePage(
    spec=phone_change.PHONE_CHANGE,
    name="phone",
    form_class=PhoneForm,
    show=format_phone,
    title=gettext_lazy("Phone number"),
    current_title=gettext_lazy("Current number"),
    change_title=gettext_lazy("Change your phone number"),
    add_title=gettext_lazy("Add a phone number"),
    change_help=gettext_lazy(
        "You will be asked to confirm it's you first. We send a code by SMS to the new number."
    ),
    pending_text=gettext_lazy("%(pending)s is waiting for its code."),
    confirm_title=gettext_lazy("Confirm your phone number"),
    confirm_text=gettext_lazy(
        "Enter the code we sent by SMS to %(pending)s. It expires after %(minutes)d minutes."
    ),
    sent=gettext_lazy("We sent a code by SMS to %(phone)s."),
    resent=gettext_lazy("We sent a new code by SMS to %(phone)s."),
    changed=gettext_lazy("Your phone number is now %(phone)s."),
    cancelled=gettext_lazy("The phone number change was cancelled."),
    nothing_pending=gettext_lazy("There is no phone number waiting for confirmation."),
    remove_url="phone_remove",
    remove_label=gettext_lazy("Remove this number"),
)

phone, phone_confirm, phone_resend, phone_cancel = verified_change_views(PAGE)


@require_POST
@login_required
@field_editable("phone")
@reauthentication_required
def phone_delete(request: HttpRequest) -> HttpResponse:
    if phone_change.phone_delete(ctx=ctx_for(request)):
        messages.success(request, _("Your phone number was removed."))
    return redirect("phone")
