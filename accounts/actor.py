"""Who is acting, on whom, from where: the audit context every flow and service takes.

Flows never read the request. Each surface builds one ``Actor``: web views with
``actor_from_request`` (``accounts.web``), the back-office with ``surface="admin"``
and the subject it acts on, management commands with ``cli_actor()``, and later the
APIs with ``api`` or ``token``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from accounts.models import User

Surface = Literal["web", "admin", "api", "token", "app", "cli"]


@dataclass(frozen=True, kw_only=True)
class Actor:
    # The acting user; None for the system itself (a cron command).
    user: User | None
    # The account acted on when it is not the actor's own (staff acting on a user).
    subject: User | None = None
    # The staff member impersonating ``user``, if any.
    impersonator_id: int | None = None
    ip: str | None = None
    user_agent: str = ""
    surface: Surface = "web"
    # The language of the request, for messages to a user who has not chosen one.
    language: str = ""
    # The session making the request: "end the other sessions" keeps it.
    session_key: str = ""
    # When the actor last proved who they are (epoch seconds), for sensitive changes.
    reauthenticated_at: float | None = None

    @property
    def target(self) -> User:
        """The account the operation is about."""
        target = self.subject if self.subject is not None else self.user
        if target is None:
            raise ValueError("this operation needs an account")
        return target

    @property
    def impersonating(self) -> bool:
        return self.impersonator_id is not None

    def on(self, subject: User) -> Actor:
        """The same actor, acting on ``subject``."""
        return replace(self, subject=subject)


def cli_actor(user: User | None = None) -> Actor:
    """A management command (cron or an operator at a shell)."""
    return Actor(user=user, surface="cli")


def system_actor() -> Actor:
    return Actor(user=None, surface="cli")
