"""GET/PATCH /api/my-account, PATCH /api/my-account/profile, the avatar; and the
API's door: authentication, scopes, verifications, errors."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import AuditEvent, PersonalAccessToken, User
from accounts.services.audit import Action
from tests.api.conftest import ApiClient, assert_error, make_token, verify
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_get_my_account_with_a_token(api: ApiClient, user: User) -> None:
    response = api.get("/api/my-account")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == user.pk
    assert body["username"] == "alice"
    assert body["display_name"] == "Alice Martin"
    assert body["email"] == "alice@example.org"
    assert body["second_factor"] is False
    assert "no-store" in response["Cache-Control"]


def test_fields_whose_policy_is_off_are_left_out(api: ApiClient, policy_modes: Any) -> None:
    policy_modes(email="off", phone="off", profile="off")
    body = api.get("/api/my-account").json()
    for key in ("email", "phone", "given_name", "family_name", "language", "time_zone"):
        assert key not in body
    assert body["username"] == "alice"


def test_no_credentials_is_401_json_never_a_redirect() -> None:
    response = Client().get("/api/my-account")
    body = assert_error(response, 401, "unauthenticated")
    assert body["details"] == {}


@pytest.mark.parametrize(
    "header",
    ["Bearer pat_nope", "Bearer " + "x" * 500, "Basic YWxpY2U6cGFzcw==", "Bearer pat_\x00"],
)
def test_bad_credentials_are_401(header: str, auth_client: Client) -> None:
    # Even with a valid session beside it: a bad token never falls back to it.
    response = auth_client.get("/api/my-account", HTTP_AUTHORIZATION=header)
    assert_error(response, 401, "unauthenticated")


def test_session_reads_and_writes_need_csrf(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/api/my-account").json()["username"] == "alice"
    response = client.patch(
        "/api/my-account", {"display_name": "Eve"}, content_type="application/json"
    )
    assert_error(response, 403, "csrf_failed")
    user.refresh_from_db()
    assert user.display_name == "Alice Martin"
    client.get("/settings/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.patch(
        "/api/my-account",
        {"display_name": "Alice M."},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.display_name == "Alice M."


def test_patch_display_name(api: ApiClient, user: User) -> None:
    response = api.patch("/api/my-account", {"display_name": "  Alice  B  "})
    assert response.status_code == 200
    assert response.json()["display_name"] == "Alice  B"
    user.refresh_from_db()
    assert user.display_name == "Alice  B"
    event = AuditEvent.objects.get(action=Action.PROFILE_UPDATED)
    assert event.subject_id == user.pk


def test_display_name_with_control_characters_is_422(api: ApiClient, user: User) -> None:
    body = assert_error(
        api.patch("/api/my-account", {"display_name": "A\x00B"}), 422, "validation_error"
    )
    assert list(body["details"]) == ["display_name"]
    user.refresh_from_db()
    assert user.display_name == "Alice Martin"


def test_unknown_fields_are_refused(api: ApiClient) -> None:
    body = assert_error(
        api.patch("/api/my-account", {"email": "x@example.org"}), 422, "validation_error"
    )
    assert "email" in body["details"]


def test_username_needs_a_verification(api: ApiClient, user: User) -> None:
    assert_error(api.patch("/api/my-account", {"username": "alicia"}), 401, "verification.required")
    verify(api)
    response = api.patch("/api/my-account", {"username": "alicia"})
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.username == "alicia"


def test_username_and_name_together_are_all_or_nothing(
    api: ApiClient, user: User, user_factory: Any
) -> None:
    user_factory(username="taken")
    verify(api)
    body = assert_error(
        api.patch("/api/my-account", {"username": "taken", "display_name": "New"}),
        422,
        "validation_error",
    )
    assert "username" in body["details"]
    user.refresh_from_db()
    assert (user.username, user.display_name) == ("alice", "Alice Martin")


def test_a_verification_of_another_user_is_refused(api: ApiClient, user_factory: Any) -> None:
    other = ApiClient(make_token(user_factory(username="bob")))
    api.verification = verify(other)
    assert_error(api.patch("/api/my-account", {"username": "alicia"}), 401, "verification.invalid")


def test_an_expired_verification_is_refused(api: ApiClient, settings: Any) -> None:
    verify(api)
    from accounts.models import ApiVerification

    ApiVerification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(api.patch("/api/my-account", {"username": "alicia"}), 401, "verification.expired")


def test_a_code_verification_not_yet_checked_is_not_a_proof(
    user_factory: Any, api_for: Any
) -> None:
    social = user_factory(username="carol", password=None)
    client = api_for(social)
    response = client.post("/api/verifications/code", {"channel": "email"})
    assert response.status_code == 200, response.content
    client.verification = response.json()["verification_id"]
    assert_error(
        client.patch("/api/my-account", {"username": "carola"}), 401, "verification.invalid"
    )


def test_code_verification(user_factory: Any, api_for: Any, mailoutbox: Any) -> None:
    social = user_factory(username="carol", password=None)
    client = api_for(social)
    pending = client.post("/api/verifications/code", {"channel": "email"}).json()
    code = next(word for word in mailoutbox[-1].body.split() if word.isdigit() and len(word) >= 6)
    assert_error(
        client.post(
            "/api/verifications/code/verify",
            {
                "verification_id": pending["verification_id"],
                "code": "000000" if code != "000000" else "111111",
            },
        ),
        422,
        "code.wrong",
    )
    response = client.post(
        "/api/verifications/code/verify",
        {"verification_id": pending["verification_id"], "code": code},
    )
    assert response.status_code == 200, response.content
    client.verification = response.json()["verification_id"]
    assert client.patch("/api/my-account", {"username": "carola"}).status_code == 200
    social.refresh_from_db()
    assert social.username == "carola"


def test_code_verification_is_for_accounts_without_password(api: ApiClient) -> None:
    assert_error(
        api.post("/api/verifications/code", {"channel": "email"}),
        409,
        "verification.method_unavailable",
    )


def test_wrong_password_counts_against_the_pages_limit(api: ApiClient, user: User) -> None:
    for _ in range(5):
        assert_error(
            api.post("/api/verifications/password", {"password": "wrong"}),
            422,
            "verification.failed",
        )
    response = api.post("/api/verifications/password", {"password": "wrong"})
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0
    # The web page's re-authentication shares the counter: over it, it signs out.
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    page = client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert page.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_session_recent_reauthentication_counts(auth_client: Client, user: User) -> None:
    from tests.conftest import reauthenticate

    reauthenticate(auth_client)
    response = auth_client.patch(
        "/api/my-account", {"username": "alicia"}, content_type="application/json"
    )
    assert response.status_code == 200, response.content


def test_second_factor_verification(api: ApiClient, user: User) -> None:
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    assert_error(
        api.post("/api/verifications/second-factor", {"method": "totp", "code": "123"}),
        422,
        "mfa.wrong_code",
    )
    device.refresh_from_db()
    device.throttle_reset()  # django-otp slows down after a wrong code
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    response = api.post("/api/verifications/second-factor", {"method": "totp", "code": code})
    assert response.status_code == 200, response.content


def test_read_only_and_off_and_master_switch(api: ApiClient, policy_modes: Any) -> None:
    policy_modes(name="read_only")
    assert_error(
        api.patch("/api/my-account", {"display_name": "X"}), 403, "policy.field_not_editable"
    )
    policy_modes(name="off")
    assert_error(
        api.patch("/api/my-account", {"display_name": "X"}), 404, "policy.field_not_enabled"
    )
    policy_modes(name="edit", enabled=False)
    assert_error(api.patch("/api/my-account", {"display_name": "X"}), 403, "policy.not_enabled")


# Every read of the Account API, and the page showing the same data.
READS = [
    ("/api/my-account", "settings_home"),
    ("/api/my-account/mfa", "two_factor"),
    ("/api/my-account/mfa/security-keys", "two_factor"),
    ("/api/my-account/identities", "socialaccount_connections"),
    ("/api/my-account/sessions", "sessions"),
    ("/api/my-account/security-activity", "security_activity"),
    ("/api/my-account/export", "export"),
    ("/api/my-account/tokens", "tokens"),
    ("/api/my-account/connected-apps", "connected_apps"),
]


def test_the_reads_above_are_every_read_of_the_account_api() -> None:
    # A read added later is checked against the master switch too.
    document = Client().get("/api/openapi.json").json()
    reads = {
        path
        for path, operations in document["paths"].items()
        if path.startswith("/api/my-account") and "get" in operations
    }
    assert reads == {path for path, _page in READS}


@pytest.mark.parametrize(("path", "page"), READS, ids=[path for path, _ in READS])
def test_master_switch_off_refuses_every_read_where_the_page_shows_its_notice(
    user: User, auth_client: Client, policy_modes: Any, path: str, page: str
) -> None:
    api = ApiClient(make_token(user))
    verify(api)
    assert api.get(path).status_code == 200
    policy_modes(enabled=False)
    assert_error(api.get(path), 403, "policy.not_enabled")
    response = auth_client.get(reverse(page))
    assert response.status_code == 200
    assert "turned off" in response.content.decode()


def test_master_switch_off_message_on_a_read(api: ApiClient, policy_modes: Any) -> None:
    policy_modes(enabled=False)
    response = api.get("/api/my-account", HTTP_ACCEPT_LANGUAGE="fr")
    body = assert_error(response, 403, "policy.not_enabled")
    assert body["message"] == "Les paramètres du compte sont désactivés sur ce site pour le moment."


def test_a_field_that_is_off_is_404_whatever_the_master_switch(
    api: ApiClient, auth_client: Client, policy_modes: Any
) -> None:
    policy_modes(sessions="off", enabled=False)
    assert_error(api.get("/api/my-account/sessions"), 404, "policy.field_not_enabled")
    assert auth_client.get(reverse("sessions")).status_code == 404


def test_web_page_gives_the_same_answers(auth_client: Client, policy_modes: Any) -> None:
    policy_modes(name="read_only")
    assert (
        auth_client.post("/settings/profile/name/edit/", {"display_name": "X"}).status_code == 403
    )
    policy_modes(name="off")
    assert (
        auth_client.post("/settings/profile/name/edit/", {"display_name": "X"}).status_code == 404
    )


def test_scopes(user: User) -> None:
    reader = ApiClient(make_token(user, ["account:read"]))
    assert reader.get("/api/my-account").status_code == 200
    assert_error(
        reader.patch("/api/my-account", {"display_name": "X"}), 403, "token.insufficient_scope"
    )
    writer = ApiClient(make_token(user, ["account:write"]))
    assert_error(writer.get("/api/my-account"), 403, "token.insufficient_scope")


def test_token_dies_on_suspension_and_password_change(api: ApiClient, user: User) -> None:
    from accounts.actor import cli_actor
    from accounts.services.moderation import user_restore, user_suspend

    assert api.get("/api/my-account").status_code == 200
    user_suspend(ctx=cli_actor(), user=user, reason="test")
    assert_error(api.get("/api/my-account"), 401, "unauthenticated")
    user_restore(ctx=cli_actor(), user=User.objects.get(pk=user.pk))
    # Revoked, not only refused: restoring the account does not bring it back.
    assert_error(api.get("/api/my-account"), 401, "unauthenticated")
    assert PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).count() == 0


def test_expired_token_is_refused(user: User) -> None:
    client = ApiClient(make_token(user))
    PersonalAccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(client.get("/api/my-account"), 401, "unauthenticated")


def test_last_used_is_recorded_at_most_once_a_minute(api: ApiClient) -> None:
    api.get("/api/my-account")
    first = PersonalAccessToken.objects.get().last_used_at
    assert first is not None
    api.get("/api/my-account")
    assert PersonalAccessToken.objects.get().last_used_at == first


def test_messages_follow_accept_language() -> None:
    response = Client().get("/api/my-account", HTTP_ACCEPT_LANGUAGE="fr")
    body = assert_error(response, 401, "unauthenticated")
    assert body["message"] == "Connectez-vous ou envoyez un jeton d’accès valide."


def test_unknown_api_address_and_wrong_method_are_json(api: ApiClient) -> None:
    assert_error(api.get("/api/nothing-here"), 404, "not_found")
    assert_error(api.post("/api/my-account", {}), 405, "method_not_allowed")


def test_malformed_json_is_400_or_422_json(api: ApiClient) -> None:
    response = api.generic(
        "PATCH", "/api/my-account", b'{"display_name": ', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
    return buffer.getvalue()


def test_avatar_put_and_delete(api: ApiClient, user: User) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    body = encode_multipart(BOUNDARY, {"avatar": SimpleUploadedFile("a.png", _png(), "image/png")})
    response = api.generic("PUT", "/api/my-account/avatar", body, content_type=MULTIPART_CONTENT)
    assert response.status_code == 200, response.content
    assert response.json()["avatar_url"].endswith(".webp")
    user.refresh_from_db()
    assert user.avatar
    response = api.delete("/api/my-account/avatar")
    assert response.status_code == 200
    assert response.json()["avatar_url"] == ""


def test_profile_patch(api: ApiClient, user: User) -> None:
    response = api.patch(
        "/api/my-account/profile", {"given_name": "Alice", "time_zone": "Europe/Paris"}
    )
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert (user.first_name, user.time_zone) == ("Alice", "Europe/Paris")
    body = assert_error(
        api.patch("/api/my-account/profile", {"time_zone": "Mars/Olympus"}), 422, "validation_error"
    )
    assert "time_zone" in body["details"]


# --- Query budgets ---------------------------------------------------------------------


def _with_history(user: User) -> None:
    """Devices, keys and sessions that must not add queries per row."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    for n in range(5):
        AuditEvent.objects.create(action=Action.SIGNED_IN, subject=user, actor=user, data={"n": n})


def test_query_budget_get_my_account(
    api: ApiClient, user: User, django_assert_max_num_queries: Any
) -> None:
    _with_history(user)
    api.get("/api/my-account")  # the policy is cached from the second call on
    with django_assert_max_num_queries(4):
        assert api.get("/api/my-account").status_code == 200


def test_query_budget_patch_display_name(
    api: ApiClient, user: User, django_assert_max_num_queries: Any
) -> None:
    _with_history(user)
    api.get("/api/my-account")
    # 5 statements; the rest are the savepoints of the nested atomic blocks.
    with django_assert_max_num_queries(11):
        assert api.patch("/api/my-account", {"display_name": "Budget"}).status_code == 200


def test_query_budget_patch_profile(
    api: ApiClient, user: User, django_assert_max_num_queries: Any
) -> None:
    api.get("/api/my-account")
    with django_assert_max_num_queries(11):
        response = api.patch("/api/my-account/profile", {"family_name": "Budget"})
        assert response.status_code == 200


def test_query_budget_password_verification(
    api: ApiClient, django_assert_max_num_queries: Any
) -> None:
    api.get("/api/my-account")
    with django_assert_max_num_queries(8):
        response = api.post("/api/verifications/password", {"password": PASSWORD})
        assert response.status_code == 200


def test_token_dies_with_deletion_and_purge(api: ApiClient, user: User) -> None:
    from accounts.actor import cli_actor
    from accounts.services.deletion import account_deletion_schedule, account_purge

    account_deletion_schedule(ctx=cli_actor(), user=user)
    assert_error(api.get("/api/my-account"), 401, "unauthenticated")
    account_purge(ctx=cli_actor(), user=User.objects.get(pk=user.pk))
    assert not PersonalAccessToken.objects.exists()
    assert_error(api.get("/api/my-account"), 401, "unauthenticated")


def test_tokens_stop_working_when_the_policy_turns_them_off(
    api: ApiClient, policy_modes: Any
) -> None:
    # A token the user can no longer see or revoke must not work either.
    policy_modes(tokens="off")
    assert_error(api.get("/api/my-account"), 401, "unauthenticated")
    policy_modes(tokens="read_only")
    assert api.get("/api/my-account").status_code == 200


def test_profile_errors_are_told_under_the_api_field_names(api: ApiClient, user: User) -> None:
    response = api.patch("/api/my-account/profile", {"given_name": "A\x00", "family_name": "B\x00"})
    body = assert_error(response, 422, "validation_error")
    assert set(body["details"]) == {"given_name", "family_name"}
    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("", "")


def test_second_factor_is_an_app_or_a_key_in_one_query(
    api: ApiClient, user: User, user_factory: Any, django_assert_max_num_queries: Any
) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.selectors.mfa import has_real_factor
    from tests.accounts.test_two_factor_signin import make_credential

    TOTPDevice.objects.create(user=user_factory(), name="Someone else's", confirmed=True)
    TOTPDevice.objects.create(user=user, name="Not confirmed", confirmed=False)
    with django_assert_max_num_queries(1):
        assert has_real_factor(user) is False
    assert api.get("/api/my-account").json()["second_factor"] is False
    key = make_credential(user)
    assert api.get("/api/my-account").json()["second_factor"] is True
    key.delete()
    TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    assert api.get("/api/my-account").json()["second_factor"] is True


def test_a_lone_surrogate_in_a_json_body_is_400(api: ApiClient, user: User) -> None:
    # Valid JSON, not Unicode (half of a surrogate pair): no database can store it.
    body = b'{"display_name": "\\udbc9 x"}'
    response = api.generic("PATCH", "/api/my-account", body, content_type="application/json")
    assert_error(response, 400, "bad_request")
    user.refresh_from_db()
    assert user.display_name == "Alice Martin"
