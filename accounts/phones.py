"""Phone number parsing: phonenumbers, stored in E.164."""

from __future__ import annotations

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Numbers that cost the sender (premium rate, shared cost) or whose kind is unknown:
# the codes are never sent there (SMS pumping pays out through such numbers).
REFUSED_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.UNKNOWN,
    }
)


def parse_phone(value: str) -> str:
    """E.164 for a valid number (national numbers read in ``PHONE_DEFAULT_REGION``)
    that may receive the portal's text messages: in ``SMS_ALLOWED_REGIONS`` (when
    set) and not premium-rate, shared-cost or of an unknown kind."""
    region = settings.PHONE_DEFAULT_REGION
    try:
        number = phonenumbers.parse((value or "").strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(_("Enter a valid phone number."), code="invalid") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(_("Enter a valid phone number."), code="invalid")
    allowed = settings.SMS_ALLOWED_REGIONS
    if allowed and phonenumbers.region_code_for_number(number) not in allowed:
        raise ValidationError(
            _("We cannot send text messages to numbers in this country."), code="region"
        )
    if phonenumbers.number_type(number) in REFUSED_TYPES:
        raise ValidationError(
            _(
                "Premium-rate and shared-cost numbers cannot receive our codes. "
                "Enter a mobile number."
            ),
            code="number_type",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    """International format for display."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
