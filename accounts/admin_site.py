"""The back-office: Django's admin behind django-otp's verified-second-factor rule.

Staff sign in through the portal's sign-in (with its second step); the admin's own
login page only sends them where they need to go.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.filters import FieldListFilter, ListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.widgets import url_params_from_lookup_dict
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import BadRequest, ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp import user_has_device
from django_otp.admin import OTPAdminSite

# The libraries' own admin pages that would change a user's identity or credentials
# without the portal's services (no proof, no audit, no notification): not shown.
# The user's page in the back-office shows these facts, and its actions change them.
HIDDEN_MODELS = frozenset(
    {
        "account.emailaddress",
        "socialaccount.socialaccount",
        "socialaccount.socialtoken",
        "otp_totp.totpdevice",
        "django_otp_webauthn.webauthncredential",
        "django_otp_webauthn.webauthnattestation",
        "django_otp_webauthn.webauthnuserhandle",
        "usersessions.usersession",
        # OAuth tokens are hashes: staff end them with an app's "Revoke all tokens".
        "allauth_idp_oidc.token",
    }
)


class CheckedIdsField(forms.ModelMultipleChoiceField):
    """Ids the database can compare (a many-to-many choice of integer keys):
    ``abc``, ``-1`` or 10**30 are a form error, not a database error (SQLite's
    driver overflows on the last one)."""

    def clean(self, value: Any) -> Any:
        from accounts.access import int_pk

        for pk in value if isinstance(value, list | tuple) else ():
            if int_pk(pk) is None:
                raise ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": pk},
                )
        return super().clean(value)


class GuardedListMixin:
    """What every list of the back-office accepts from the query string and from a
    bulk action, and every form's many-to-many choice (``CheckedIdsField``), so that
    no input reaches the database as something it cannot take:

    - a filter parameter only if one of the list's filters (or its date hierarchy)
      offers it, or it is in ``extra_lookups``: no free ``field__lookup`` such as
      ``username__regex`` (Django's own rule lets any lookup on a local field through);
    - no NUL byte in any parameter (PostgreSQL refuses them in text);
    - bulk actions only on ids the primary key accepts, in its range (Django would
      pass ``abc`` or 10**30 to ``pk__in`` and fail with a server error).

    Refusals are 400s (``DisallowedModelAdminLookup`` and ``BadRequest``, as the
    admin itself answers a lookup it does not allow). A value an offered filter
    cannot take keeps Django's answer (the list without filters and a notice; 400
    for the CSV export), numbers too large for the database included."""

    extra_lookups: frozenset[str] = frozenset()

    def offered_lookups(self, request: HttpRequest) -> set[str]:
        model_admin: Any = self
        offered = set(self.extra_lookups)
        for item in model_admin.get_list_filter(request):
            spec: ListFilter
            if isinstance(item, type) and issubclass(item, ListFilter):
                spec = item(request, {}, model_admin.model, model_admin)
            else:
                path, filter_class = (
                    item if isinstance(item, list | tuple) else (item, FieldListFilter.create)
                )
                field = get_fields_from_path(model_admin.model, path)[-1]
                spec = filter_class(field, request, {}, model_admin.model, model_admin, path)
            offered.update(name for name in spec.expected_parameters() if name)
        if model_admin.date_hierarchy:
            offered.update(f"{model_admin.date_hierarchy}__{p}" for p in ("year", "month", "day"))
        return offered

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        model_admin: Any = self
        # The raw-id popups of a foreign key's ``limit_choices_to``, as Django allows.
        for fk_lookup in model_admin.model._meta.related_fkey_lookups:
            params = url_params_from_lookup_dict(fk_lookup() if callable(fk_lookup) else fk_lookup)
            if params.get(lookup) == value:
                return True
        return lookup in self.offered_lookups(request)

    def formfield_for_manytomany(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if isinstance(db_field.remote_field.model._meta.pk, models.IntegerField):
            kwargs.setdefault("form_class", CheckedIdsField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                raise BadRequest("NUL byte in a list parameter")
        try:
            return super().get_changelist_instance(request)  # type: ignore[misc]
        except OverflowError as exc:
            # A year or id with thirty digits: Django's date hierarchy and SQLite's
            # driver raise OverflowError where a bad value is a ValueError.
            raise IncorrectLookupParameters(exc) from exc

    def response_action(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        pk = self.model._meta.pk  # type: ignore[attr-defined]
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                pk.run_validators(pk.to_python(value))
            except ValidationError as exc:
                raise BadRequest("not an id of this list") from exc
        return super().response_action(request, *args, **kwargs)  # type: ignore[misc]


class PortalAdminSite(OTPAdminSite):
    site_header = gettext_lazy("Account portal back-office")
    site_title = gettext_lazy("Back-office")
    index_title = gettext_lazy("Back-office")

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        models = (
            model_or_iterable
            if isinstance(model_or_iterable, list | tuple)
            else [model_or_iterable]
        )
        kept = [m for m in models if m._meta.label_lower not in HIDDEN_MODELS]
        if not kept:
            return
        # The libraries' lists too: unknown filters, NUL bytes and bad ids are 400s.
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, GuardedListMixin):
            admin_class = type(admin_class.__name__, (GuardedListMixin, admin_class), {})
        super().register(kept, admin_class, **options)

    def password_change(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        """Staff change their password like everyone (audited, other sessions end)."""
        return redirect("account_change_password")

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
        user = request.user
        if not user.is_authenticated:
            return redirect(
                f"{reverse('account_login')}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"
            )
        if not (user.is_active and user.is_staff):
            messages.error(request, _("The back-office is for staff only."))
            return redirect("settings_home")
        if not user_has_device(user, confirmed=True):
            messages.warning(
                request,
                _(
                    "The back-office needs two-step verification: set up an authenticator "
                    "app or a security key first."
                ),
            )
            return redirect("two_factor")
        # A second factor exists but this session has not used it (for example after
        # leaving an impersonation): verify it again.
        return redirect(
            f"{reverse('reauthenticate_two_factor')}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"
        )
