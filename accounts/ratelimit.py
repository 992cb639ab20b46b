"""Rate limits on our own actions, through allauth's limiter (same cache, same
configuration: ACCOUNT_RATE_LIMITS in settings)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from allauth.core import ratelimit
from django.http import HttpRequest, HttpResponse


def consume_or_429(request: HttpRequest, *, action: str, user: Any) -> HttpResponse | None:
    """Counts one use of ``action`` by ``user``; a 429 response when over the limit."""
    return ratelimit.consume_or_429(request, action=action, user=user)


def rate_limit(
    *, action: str
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Counts POSTs per user under ``action``; over the limit answers 429."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                refused = consume_or_429(request, action=action, user=request.user)
                if refused is not None:
                    return refused
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
