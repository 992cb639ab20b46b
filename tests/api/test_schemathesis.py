"""Schemathesis against a live server: every operation of ``/api/openapi.json``.

For each operation in the document (one test each), Hypothesis generates valid
and invalid requests from the operation's own schema; each is sent to the live
server signed in with a personal access token and an identity verification
(``X-Verification-Id``), so that the sensitive operations are reached too. Every
answer must be no server error, a status code the operation declares, with the
declared content type, and a body matching the declared schema.

Each operation gets its own user, token and verification: a destructive one
(password change, deletion, token revocation, ending sessions) kills only its own
credentials. When an answer is a 401 (the credentials died, or the verification
was used up) or a 429 (the user's rate limit is spent), the next example gets a
new user.

    pytest tests/api/test_schemathesis.py            # SQLite
    DATABASE_URL=postgres://... pytest tests/api/test_schemathesis.py
    SCHEMATHESIS_EXAMPLES=300 SCHEMATHESIS_SEED=1 pytest ...   # a longer, other run
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from tests.api.conftest import make_token
from tests.conftest import PASSWORD

OPENAPI_PATH = "/api/openapi.json"
# Examples per operation (valid and invalid ones together).
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
# The suite's runs are the same every time; a seed explores other examples.
SEED = os.environ.get("SCHEMATHESIS_SEED", "")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
TIMEOUT = 30


def _operation_labels() -> list[str]:
    """``METHOD /path`` of every operation the API declares (collected from the
    same ``NinjaAPI`` the live server serves; the test itself reads the document
    over HTTP)."""
    from accounts.api.api import api

    document = api.get_openapi_schema()
    return [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "put", "post", "patch", "delete", "head", "options"}
    ]


@functools.cache
def _load(url: str) -> Any:
    return schemathesis.openapi.from_url(url + OPENAPI_PATH, timeout=TIMEOUT)


class Credentials:
    """A user with a token of both scopes and an identity verification, made
    again when an answer says they no longer work.

    For the Management API: a superuser with a management token, and a fresh
    account to act on, put in every ``{user_id}`` of the path (made again when an
    answer says it is gone or changed state), so that the operations are reached
    rather than answered 404 for a random id."""

    def __init__(
        self, base_url: str, make_user: Callable[..., User], *, management: bool = False
    ) -> None:
        self.base_url = base_url
        self.make_user = make_user
        self.management = management
        self.headers: dict[str, str] = {}
        self.target: User | None = None
        self.renew()

    def renew(self) -> None:
        if self.management:
            from django_otp.plugins.otp_totp.models import TOTPDevice

            staff = self.make_user(is_staff=True, is_superuser=True)
            TOTPDevice.objects.create(user=staff, name="app", confirmed=True)
            self.headers = {"Authorization": f"Bearer {make_token(staff, ['management'])}"}
            self.target = self.make_user(display_name="Managed User")
            self.stale = False
            return
        user = self.make_user(display_name="Schema Thesis")
        token = make_token(user)
        response = requests.post(
            self.base_url + "/api/verifications/password",
            json={"password": PASSWORD},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        self.headers = {
            "Authorization": f"Bearer {token}",
            "X-Verification-Id": response.json()["verification_id"],
        }
        self.stale = False

    def for_next_case(self) -> dict[str, str]:
        if self.stale:
            self.renew()
        return dict(self.headers)

    def aim(self, case: schemathesis.Case) -> None:
        """Management operations act on the account made for them."""
        if self.target is not None and "user_id" in (case.path_parameters or {}):
            case.path_parameters["user_id"] = self.target.pk

    def saw(self, status: int) -> None:
        # 401: the token or the verification died (password changed, deletion
        # scheduled, token revoked); 429: this user's rate limit is spent; for the
        # Management API, 404 or 409: the account acted on was purged or changed state.
        if status in {401, 429} or (self.management and status in {404, 409}):
            self.stale = True


def exercise(
    label: str, base_url: str, make_user: Callable[..., User], examples: int = EXAMPLES
) -> Counter[str]:
    """Sends ``examples`` generated requests to the operation ``label``, each
    checked; returns how many answers of each status and code it got."""
    operation = _load(base_url).find_operation_by_label(label)
    assert operation is not None, f"{label} is not in {OPENAPI_PATH}"
    credentials = Credentials(base_url, make_user, management=" /api/management/" in label)
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    answers: Counter[str] = Counter()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not SEED,
        # A failure is reported as found: shrinking would replay many requests.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(case=strategy)
    @seed(int(SEED or 0))
    def check(case: schemathesis.Case) -> None:
        headers = credentials.for_next_case()
        credentials.aim(case)
        response = case.call_and_validate(
            base_url=base_url,
            headers=headers,
            checks=CHECKS,
            timeout=TIMEOUT,
        )
        credentials.saw(response.status_code)
        code = response.json().get("code", "") if response.status_code >= 400 else ""
        answers[f"{response.status_code} {code}".strip()] += 1

    check()
    return answers


@pytest.mark.parametrize("label", _operation_labels())
def test_operation_follows_its_schema(
    label: str, live_server: Any, transactional_db: Any, user_factory: Callable[..., User]
) -> None:
    answers = exercise(label, live_server.url, user_factory)
    # The operation was reached: not every answer was a refused token.
    assert set(answers) - {"401 unauthenticated", "403 forbidden"}, answers


def test_a_server_error_fails_the_run(
    live_server: Any, transactional_db: Any, user_factory: Callable[..., User], monkeypatch: Any
) -> None:
    """The harness itself: an endpoint that breaks is reported, with the request
    that broke it."""
    from schemathesis.core.failures import FailureGroup

    from accounts.api.routers import account

    def broken(*args: Any) -> dict[str, Any]:
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(account, "account_data", broken)
    with pytest.raises(FailureGroup) as failure:
        exercise("GET /api/my-account", live_server.url, user_factory, examples=3)
    assert "Server error" in str(failure.value)
