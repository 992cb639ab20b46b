from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe


@require_safe
def root(request: HttpRequest) -> HttpResponse:
    """The site root: the settings for a signed-in user, sign-in for anyone else."""
    if request.user.is_authenticated:
        return redirect("settings_home")
    return redirect("account_login")


@require_safe
@login_required
def settings_home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html", {"active_section": "home"})
