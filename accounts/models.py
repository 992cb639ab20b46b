from __future__ import annotations

import zoneinfo
from typing import ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

LANGUAGE_CHOICES = [("en", _("English")), ("fr", _("French"))]
TIME_ZONE_CHOICES = [(tz, tz) for tz in sorted(zoneinfo.available_timezones())]


class PortalUserManager(UserManager["User"]):
    """Looks usernames and emails up case-insensitively, as the database constrains them."""

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(username__iexact=username)


class User(AbstractUser):
    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        PENDING_DELETION = "pending_deletion", _("Pending deletion")

    email = models.EmailField(_("email address"), blank=True)
    first_name = models.CharField(_("given name"), max_length=150, blank=True)
    last_name = models.CharField(_("family name"), max_length=150, blank=True)
    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    avatar = models.ImageField(_("avatar"), upload_to="avatars/", blank=True)
    phone = models.CharField(
        _("phone number"), max_length=16, blank=True, help_text=_("E.164 format.")
    )
    phone_verified = models.BooleanField(_("phone number verified"), default=False)
    language = models.CharField(
        _("preferred language"),
        max_length=8,
        choices=LANGUAGE_CHOICES,
        blank=True,
        help_text=_("Empty: the browser's language is used."),
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, choices=TIME_ZONE_CHOICES, default="UTC"
    )

    state = models.CharField(
        _("account state"), max_length=20, choices=State.choices, default=State.ACTIVE
    )
    state_changed_at = models.DateTimeField(_("state changed at"), null=True, blank=True)
    state_reason = models.TextField(_("reason for the state"), blank=True)
    suspended_until = models.DateTimeField(_("suspended until"), null=True, blank=True)
    deletion_scheduled_for = models.DateTimeField(
        _("deletion scheduled for"), null=True, blank=True
    )

    objects: ClassVar[PortalUserManager] = PortalUserManager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
            models.UniqueConstraint(
                Lower("email"),
                condition=~Q(email=""),
                name="accounts_user_email_ci_unique",
            ),
            models.UniqueConstraint(
                "phone", condition=~Q(phone=""), name="accounts_user_phone_unique"
            ),
            models.CheckConstraint(
                condition=Q(state="active", is_active=True)
                | (~Q(state="active") & Q(is_active=False)),
                name="accounts_user_is_active_mirrors_state",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["active", "suspended", "pending_deletion"]),
                name="accounts_user_state_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "date_joined"], name="accounts_user_state_joined"),
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def shown_name(self) -> str:
        """The name the interface greets the user with."""
        return self.display_name or self.get_full_name() or self.username

    @property
    def initials(self) -> str:
        parts = [p for p in self.shown_name.split() if p]
        letters = "".join(p[0] for p in parts[:2]) or self.username[:1]
        return letters.upper()
