"""OAuth apps in the back-office: allauth's ``Client`` registered with the portal's
own page (``OAuthAppForm``), every change through ``accounts.flows.oauth_apps``.

allauth's own client page (secrets shown through ``mark_safe``, wildcards and
``skip_consent`` offered) is replaced; its token list is not shown at all
(``HIDDEN_MODELS``): tokens are hashes, and staff end them with "Revoke all
tokens". A secret is shown once, on the page that answers the creation or the
"new secret" request, and is never stored in clear (no message, no session).
"""

from __future__ import annotations

from typing import Any

# allauth's admin module registers its pages when imported: import it first (it
# may come after this module in INSTALLED_APPS), then replace them.
from allauth.idp.oidc import admin as _allauth_admin  # noqa: F401
from allauth.idp.oidc.models import Client, Token
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.admin.oauth_forms import OAuthAppForm
from accounts.admin_site import GuardedListMixin
from accounts.flows import oauth_apps as flows
from accounts.flows.errors import AccessDenied, FlowError
from accounts.models import AppGrant, User
from accounts.services.oauth_apps import MACHINE
from accounts.web import actor_from_request

if admin.site.is_registered(Client):
    admin.site.unregister(Client)

# Shown read-only (values computed for the page, or fixed at creation).
DISPLAY_FIELDS = (
    "kind_label",
    "service_account",
    "live_tokens",
    "connected_users",
    "redirect_uris_list",
    "cors_origins_list",
    "scopes_list",
    "groups_list",
)
SECRET_KEY = "_portal_oauth_app_secret"


def _machine(obj: Client) -> Any:
    return getattr(obj, "machine", None)


class _KindFilter(admin.SimpleListFilter):
    title = gettext_lazy("kind")
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("user", gettext_lazy("Apps acting for users")),
            (MACHINE, gettext_lazy("Machine clients")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Client]) -> QuerySet[Client]:
        if self.value() == MACHINE:
            return queryset.filter(machine__isnull=False)
        if self.value() == "user":
            return queryset.filter(machine__isnull=True)
        return queryset


@admin.register(Client)
class OAuthAppAdmin(GuardedListMixin, admin.ModelAdmin):
    form = OAuthAppForm
    list_display = ("name", "id", "kind_label", "type", "created_at")
    list_filter = (_KindFilter, "type")
    search_fields = ("name", "=id")
    search_help_text = gettext_lazy("The app's name, or its exact client ID.")
    ordering = ("-created_at",)
    list_per_page = 50
    actions = ["revoke_tokens_selected"]
    change_form_template = "admin/allauth_idp_oidc/client/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Client]:
        return super().get_queryset(request).select_related("machine__account")

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        staff = request.user if isinstance(request.user, User) else None
        return type(form.__name__, (form,), {"staff": staff})

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return DISPLAY_FIELDS
        return ("id", "type", "created_at", *DISPLAY_FIELDS)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [
                (None, {"fields": ("name", "kind", "type")}),
                (
                    gettext_lazy("Apps acting for users"),
                    {"fields": ("redirect_uris", "cors_origins")},
                ),
                (gettext_lazy("Access"), {"fields": ("scopes", "groups")}),
            ]
        machine = _machine(obj) is not None
        identity = ("id", "name", "kind_label", "type", "created_at")
        if not self.has_change_permission(request, obj):
            shown = [*identity, "scopes_list"]
            shown += (
                ["service_account", "groups_list", "live_tokens"]
                if machine
                else ["redirect_uris_list", "cors_origins_list", "live_tokens", "connected_users"]
            )
            return [(None, {"fields": shown})]
        if machine:
            return [
                (None, {"fields": identity}),
                (
                    gettext_lazy("Access"),
                    {"fields": ("scopes", "service_account", "groups", "live_tokens")},
                ),
            ]
        return [
            (None, {"fields": identity}),
            (gettext_lazy("Addresses"), {"fields": ("redirect_uris", "cors_origins")}),
            (
                gettext_lazy("Access"),
                {"fields": ("scopes", "live_tokens", "connected_users")},
            ),
        ]

    # --- What the pages show ---------------------------------------------------------

    @admin.display(description=gettext_lazy("kind"))
    def kind_label(self, obj: Client) -> str:
        if _machine(obj) is not None:
            return _("Machine client")
        return _("App acting for users")

    @admin.display(description=gettext_lazy("service account"))
    def service_account(self, obj: Client) -> str:
        machine = _machine(obj)
        if machine is None:
            return "—"
        account = machine.account
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[account.pk]), account
        )

    @admin.display(description=gettext_lazy("live tokens"))
    def live_tokens(self, obj: Client) -> int:
        return Token.objects.filter(client=obj).valid().count()

    @admin.display(description=gettext_lazy("users connected"))
    def connected_users(self, obj: Client) -> int:
        return AppGrant.objects.filter(client=obj).count()

    @admin.display(description=gettext_lazy("redirect URIs"))
    def redirect_uris_list(self, obj: Client) -> str:
        return "\n".join(obj.get_redirect_uris()) or "—"

    @admin.display(description=gettext_lazy("browser origins (CORS)"))
    def cors_origins_list(self, obj: Client) -> str:
        return "\n".join(obj.get_cors_origins()) or "—"

    @admin.display(description=gettext_lazy("allowed scopes"))
    def scopes_list(self, obj: Client) -> str:
        return "\n".join(obj.get_scopes()) or "—"

    @admin.display(description=gettext_lazy("service account's groups"))
    def groups_list(self, obj: Client) -> str:
        machine = _machine(obj)
        if machine is None:
            return "—"
        return "\n".join(machine.account.groups.order_by("name").values_list("name", flat=True))

    # --- Saving through the flows ----------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Client, form: Any, change: bool) -> None:
        ctx = actor_from_request(request, surface="admin")
        try:
            if change:
                flows.oauth_app_update(ctx=ctx, client=obj, settings=form.app_settings())
            else:
                new = flows.oauth_app_create(
                    ctx=ctx,
                    client=obj,
                    kind=form.app_kind,
                    public=form.public,
                    settings=form.app_settings(),
                )
                setattr(request, SECRET_KEY, new.secret)
        except AccessDenied as error:
            raise PermissionDenied(error.message) from error

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing: the service account's groups were saved by the flow."""

    def delete_model(self, request: HttpRequest, obj: Client) -> None:
        self._delete(request, [obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        self._delete(request, list(queryset))

    def _delete(self, request: HttpRequest, clients: list[Client]) -> None:
        ctx = actor_from_request(request, surface="admin")
        try:
            for client in clients:
                flows.oauth_app_delete(ctx=ctx, client=client)
        except AccessDenied as error:
            raise PermissionDenied(error.message) from error

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """The confirmation lists the apps and how many tokens and connected users
        go with them (an app may hold tokens by the thousand)."""
        objs = list(objs)
        counts = {
            str(Token._meta.verbose_name_plural): Token.objects.filter(client__in=objs).count(),
            str(AppGrant._meta.verbose_name_plural): AppGrant.objects.filter(
                client__in=objs
            ).count(),
        }
        model_count = {
            str(Client._meta.verbose_name_plural): len(objs),
            **{name: n for name, n in counts.items() if n},
        }
        to_delete = [f"{obj.name} ({obj.pk})" for obj in objs]
        return to_delete, model_count, set(), []

    def response_add(
        self, request: HttpRequest, obj: Client, post_url_continue: str | None = None
    ) -> HttpResponse:
        secret = getattr(request, SECRET_KEY, None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        return self._secret_page(request, obj, secret, title=_("The app is registered"))

    # --- New secret, revoke all tokens -------------------------------------------

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        extra: list[URLPattern] = [
            path(
                "<path:object_id>/new-secret/",
                wrap(self.new_secret_view),
                name="allauth_idp_oidc_client_new_secret",
            ),
            path(
                "<path:object_id>/revoke-tokens/",
                wrap(self.revoke_tokens_view),
                name="allauth_idp_oidc_client_revoke_tokens",
            ),
        ]
        return [*extra, *super().get_urls()]

    def _app_to_change(self, request: HttpRequest, object_id: str) -> Client:
        client = self.get_object(request, unquote(object_id))
        if client is None:
            raise Http404
        if not self.has_change_permission(request, client):
            raise PermissionDenied
        return client

    def new_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        client = self._app_to_change(request, object_id)
        try:
            if client.type != Client.Type.CONFIDENTIAL:
                raise flows.NoSecret()
            if request.method == "POST":
                secret = flows.oauth_app_secret_rotate(
                    ctx=actor_from_request(request, surface="admin"), client=client
                )
                return self._secret_page(request, client, secret, title=_("The app's new secret"))
        except AccessDenied as error:
            raise PermissionDenied(error.message) from error
        except FlowError as error:
            messages.error(request, str(error.message))
            return redirect("admin:allauth_idp_oidc_client_change", client.pk)
        return self._confirm_page(
            request,
            client,
            title=_("Give %(app)s a new secret") % {"app": client.name},
            text=_(
                "The current secret stops working at once: the app must be given the new "
                "one. Tokens already issued stay valid until they expire; revoke them too "
                "if the old secret may have leaked."
            ),
            button=_("Make a new secret"),
        )

    def revoke_tokens_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        client = self._app_to_change(request, object_id)
        if request.method == "POST":
            count = self._revoke(request, [client])
            messages.success(
                request, ngettext("%d token revoked.", "%d tokens revoked.", count) % count
            )
            return redirect("admin:allauth_idp_oidc_client_change", client.pk)
        return self._confirm_page(
            request,
            client,
            title=_("Revoke every token of %(app)s") % {"app": client.name},
            text=_(
                "Every access and refresh token of the app stops working at once, those it "
                "holds for users and its own; users must allow it again."
            ),
            button=_("Revoke all tokens"),
        )

    @admin.action(
        description=gettext_lazy("Revoke all tokens of the selected apps"),
        permissions=["change"],
    )
    def revoke_tokens_selected(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        clients = list(queryset)
        count = self._revoke(request, clients)
        self.message_user(
            request,
            ngettext(
                "%(tokens)d token revoked in %(apps)d app(s).",
                "%(tokens)d tokens revoked in %(apps)d app(s).",
                count,
            )
            % {"tokens": count, "apps": len(clients)},
        )

    def _revoke(self, request: HttpRequest, clients: list[Client]) -> int:
        ctx = actor_from_request(request, surface="admin")
        try:
            return sum(flows.oauth_app_tokens_revoke(ctx=ctx, client=c) for c in clients)
        except AccessDenied as error:
            raise PermissionDenied(error.message) from error

    def _context(self, request: HttpRequest, client: Client, title: str) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "app": client,
            "title": title,
        }

    def _confirm_page(
        self, request: HttpRequest, client: Client, *, title: str, text: str, button: str
    ) -> HttpResponse:
        return TemplateResponse(
            request,
            "admin/allauth_idp_oidc/client/confirm.html",
            {**self._context(request, client, title), "text": text, "button": button},
        )

    def _secret_page(
        self, request: HttpRequest, client: Client, secret: str, *, title: str
    ) -> HttpResponse:
        return TemplateResponse(
            request,
            "admin/allauth_idp_oidc/client/secret.html",
            {**self._context(request, client, title), "secret": secret},
        )
