from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from accounts.policy import PolicyDenied


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403 with the reason when it is ours to tell (a policy refusal), else a generic one.

    An htmx request gets the message alone, placed in the page's message area."""
    if isinstance(exception, PolicyDenied) and exception.args:
        message = str(exception.args[0])
    else:
        message = _("You are not allowed to do this.")
    if getattr(request, "htmx", False):
        response = render(
            request,
            "accounts/includes/message.html",
            {"message": message, "level": "error"},
            status=403,
        )
        response["HX-Retarget"] = "#messages"
        response["HX-Reswap"] = "innerHTML"
        return response
    return render(request, "403.html", {"message": message}, status=403)


def too_many_requests(request: HttpRequest) -> HttpResponse:
    """allauth's refusal by one of its rate limits (its ``respond_429`` calls the root
    URLconf's ``handler429``): the same page as allauth's own, counted by limit."""
    from accounts.limits import allauth_refusal_counted

    match = getattr(request, "resolver_match", None)
    allauth_refusal_counted(match.url_name if match is not None else None)
    return render(request, "429.html", status=429)
