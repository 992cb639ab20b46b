from allauth.idp.oidc.apps import OIDCConfig
from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import signals  # noqa: F401 - connects the receivers


class PortalAdminConfig(AdminConfig):
    """django.contrib.admin with the portal's site (second factor required)."""

    default_site = "accounts.admin_site.PortalAdminSite"


class OAuthProviderConfig(OIDCConfig):
    """allauth's OpenID Connect provider, named for the back-office's index."""

    verbose_name = _("OAuth apps")
