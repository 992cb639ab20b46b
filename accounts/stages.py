"""The second step of sign-in, as an allauth login stage: Django's login() runs only
after it succeeds, so nobody is ever half signed in."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import redirect


def _login_stage_base() -> type:
    # Imported here: allauth.account.stages imports the URL configuration's
    # modules, which would be circular at import time of the root urlconf.
    from allauth.account.stages import LoginStage

    return LoginStage


class SecondFactorStage(_login_stage_base()):  # type: ignore[misc]
    key = "portal_second_factor"
    urlname = "two_factor_verify"

    def handle(self) -> tuple[HttpResponse | None, bool]:
        from django_otp import user_has_device

        user: Any = self.login.user
        if user is None or not user_has_device(user, confirmed=True):
            return None, True
        from accounts.metrics import sign_in_counted

        sign_in_counted("second_step_required")
        return redirect(self.urlname), True
