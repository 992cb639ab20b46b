from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from accounts.policy import get_policy, settings_off_response


@require_safe
def root(request: HttpRequest) -> HttpResponse:
    """The site root: the settings for a signed-in user, sign-in for anyone else."""
    if request.user.is_authenticated:
        return redirect("settings_home")
    return redirect("account_login")


@require_safe
@login_required
def settings_home(request: HttpRequest) -> HttpResponse:
    if not get_policy(request).enabled:
        return settings_off_response(request)
    return render(request, "accounts/home.html", {"active_section": "home"})
