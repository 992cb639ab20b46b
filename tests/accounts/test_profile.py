from __future__ import annotations

import io
import time
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from django.test import Client
from django.urls import reverse
from PIL import Image

from accounts.actor import Actor
from accounts.flows import profile as profile_flows
from accounts.flows.errors import ImpersonationRefused, ReauthenticationRequired
from accounts.images import process_avatar
from accounts.models import AuditEvent, User
from accounts.policy import PolicyDenied
from tests.conftest import PASSWORD, reauthenticate

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/settings/profile/"}


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (400, 300), **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt, **save)
    return out.getvalue()


def upload(name: str, content: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


# --- Page and cards -------------------------------------------------------------


def test_profile_page_shows_every_card(auth_client: Client) -> None:
    response = auth_client.get(reverse("profile"))
    html = response.content.decode()
    assert response.status_code == 200
    for card in ("card-name", "card-details", "card-avatar", "card-username"):
        assert f'id="{card}"' in html
    assert html.count("<h1>") == 1


def test_edit_name_without_javascript(auth_client: Client, user: User) -> None:
    form_page = auth_client.get(reverse("profile_name_edit"))
    assert form_page.status_code == 200
    assert 'name="display_name"' in form_page.content.decode()
    response = auth_client.post(reverse("profile_name_edit"), {"display_name": "  Ally  "})
    assert response.status_code == 302
    assert response["Location"] == reverse("profile")
    user.refresh_from_db()
    assert user.display_name == "Ally"
    event = AuditEvent.objects.get(action="profile.updated")
    assert event.subject == user
    assert event.actor == user
    assert event.data["before"] == {"display_name": "Alice Martin"}
    assert event.data["after"] == {"display_name": "Ally"}
    page = auth_client.get(response["Location"]).content.decode()
    assert "Your display name was saved." in page


def test_edit_name_with_htmx_returns_only_the_card(auth_client: Client, user: User) -> None:
    form = auth_client.get(reverse("profile_name_edit"), **HTMX).content.decode()
    assert form.lstrip().startswith('<section class="card" id="card-name"')
    assert "<html" not in form
    saved = auth_client.post(reverse("profile_name_edit"), {"display_name": "Ally"}, **HTMX)
    html = saved.content.decode()
    assert saved.status_code == 200
    assert html.lstrip().startswith('<section class="card" id="card-name"')
    assert "Ally" in html
    assert 'hx-swap-oob="true"' in html
    assert "Your display name was saved." in html
    cancel = auth_client.get(reverse("profile_card", args=["name"]), **HTMX).content.decode()
    assert 'id="card-name"' in cancel
    assert "<form" not in cancel
    user.refresh_from_db()
    assert user.display_name == "Ally"


def test_invalid_input_changes_nothing_and_says_why(auth_client: Client, user: User) -> None:
    response = auth_client.post(
        reverse("profile_details_edit"),
        {"first_name": "Al\x07ice", "last_name": "M", "language": "xx", "time_zone": "Mars/Base"},
        **HTMX,
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Remove the control characters." in html
    assert 'aria-invalid="true"' in html
    user.refresh_from_db()
    assert (user.first_name, user.language, user.time_zone) == ("", "", "UTC")
    assert not AuditEvent.objects.exists()


def test_language_and_time_zone_apply_at_once(auth_client: Client, user: User) -> None:
    response = auth_client.post(
        reverse("profile_details_edit"),
        {
            "first_name": "Alice",
            "last_name": "Martin",
            "language": "fr",
            "time_zone": "Europe/Paris",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.language, user.time_zone) == ("fr", "Europe/Paris")
    page = auth_client.get(reverse("profile")).content.decode()
    assert '<html lang="fr">' in page
    assert "Vos informations personnelles ont été enregistrées." in unescape(page)


def test_extra_posted_fields_are_ignored(auth_client: Client, user: User) -> None:
    evil = {"is_staff": "on", "is_superuser": "on", "state": "suspended", "email": "x@evil.test"}
    auth_client.post(reverse("profile_name_edit"), {"display_name": "Ally", **evil})
    auth_client.post(
        reverse("profile_details_edit"),
        {"first_name": "A", "last_name": "M", "language": "", "time_zone": "UTC", **evil},
    )
    user.refresh_from_db()
    assert user.display_name == "Ally"
    assert not user.is_staff
    assert not user.is_superuser
    assert user.state == "active"
    assert user.email == "alice@example.org"


WRITE_URLS = [
    ("profile_name_edit", {"display_name": "X"}),
    (
        "profile_details_edit",
        {"first_name": "X", "last_name": "", "language": "", "time_zone": "UTC"},
    ),
    ("profile_username_edit", {"username": "someone"}),
    ("profile_avatar_remove", {}),
    ("profile_avatar", {}),
]


@pytest.mark.parametrize(("url_name", "data"), WRITE_URLS)
def test_csrf_is_enforced_on_every_write(user: User, url_name: str, data: dict) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(reverse(url_name), data)
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.display_name == "Alice Martin"
    assert user.username == "alice"
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(("url_name", "data"), WRITE_URLS)
def test_writes_require_sign_in(client: Client, url_name: str, data: dict) -> None:
    response = client.post(reverse(url_name), data)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_writes_refuse_get(auth_client: Client) -> None:
    assert auth_client.get(reverse("profile_avatar")).status_code == 405
    assert auth_client.get(reverse("profile_avatar_remove")).status_code == 405


def test_profile_page_query_budget(auth_client: Client, django_assert_max_num_queries: Any) -> None:
    auth_client.get(reverse("profile"))
    with django_assert_max_num_queries(4):
        assert auth_client.get(reverse("profile")).status_code == 200


# --- Avatar ---------------------------------------------------------------------


def stored_files(settings: Any) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "avatars"
    return sorted(folder.glob("*")) if folder.exists() else []


def test_avatar_upload_is_cropped_resized_and_reencoded(
    auth_client: Client, user: User, settings: Any
) -> None:
    response = auth_client.post(
        reverse("profile_avatar"), {"avatar": upload("me.png", image_bytes("PNG", (400, 300)))}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.avatar.name.startswith("avatars/")
    assert user.avatar.name.endswith(".webp")
    with Image.open(user.avatar.path) as stored:
        assert stored.format == "WEBP"
        assert stored.size == (256, 256)
    assert AuditEvent.objects.filter(action="avatar.changed", subject=user).count() == 1
    # It is served, and shown on the page.
    assert user.avatar.url in auth_client.get(reverse("profile")).content.decode()
    served = auth_client.get(user.avatar.url)
    assert served.status_code == 200


def test_replacing_the_avatar_deletes_the_old_file(
    auth_client: Client, user: User, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        auth_client.post(reverse("profile_avatar"), {"avatar": upload("a.png", image_bytes())})
    user.refresh_from_db()
    first = Path(user.avatar.path)
    with django_capture_on_commit_callbacks(execute=True):
        auth_client.post(
            reverse("profile_avatar"),
            {"avatar": upload("b.jpg", image_bytes("JPEG"), "image/jpeg")},
        )
    user.refresh_from_db()
    assert Path(user.avatar.path) != first
    assert not first.exists()
    assert stored_files(settings) == [Path(user.avatar.path)]


def test_removing_the_avatar_falls_back_to_initials(
    auth_client: Client, user: User, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        auth_client.post(reverse("profile_avatar"), {"avatar": upload("a.png", image_bytes())})
        user.refresh_from_db()
        path = Path(user.avatar.path)
        response = auth_client.post(reverse("profile_avatar_remove"), **HTMX)
    assert response.status_code == 200
    assert "avatar-initials" in response.content.decode()
    user.refresh_from_db()
    assert not user.avatar
    assert not path.exists()
    assert AuditEvent.objects.filter(action="avatar.removed").count() == 1


def test_jpeg_with_exif_gps_is_stored_without_metadata(
    auth_client: Client, user: User, settings: Any
) -> None:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 24.0)
    out = io.BytesIO()
    Image.new("RGB", (300, 300), (0, 120, 0)).save(out, format="JPEG", exif=exif)
    raw = out.getvalue()
    with Image.open(io.BytesIO(raw)) as original:
        assert original.getexif().get_ifd(0x8825)  # the test file really has GPS data
    auth_client.post(reverse("profile_avatar"), {"avatar": upload("gps.jpg", raw, "image/jpeg")})
    user.refresh_from_db()
    data = Path(user.avatar.path).read_bytes()
    assert b"SpyCam" not in data
    assert b"Exif" not in data
    with Image.open(user.avatar.path) as stored:
        assert not stored.getexif()
        assert "exif" not in stored.info
        assert "xmp" not in stored.info


def _truncated_png() -> bytes:
    return image_bytes("PNG", (600, 600))[:400]


def _pixel_flood_png() -> bytes:
    # A tiny file that claims 30000 x 30000 pixels (900 megapixels).
    out = io.BytesIO()
    Image.new("1", (30000, 30000)).save(out, format="PNG", optimize=True)
    return out.getvalue()


BAD_UPLOADS = [
    (
        "oversize",
        "big.png",
        lambda: b"\x89PNG\r\n\x1a\n" + b"0" * (5 * 1024 * 1024 + 1),
        "larger than 5 MB",
    ),
    ("pixel flood", "flood.png", _pixel_flood_png, "too large: at most 4096 × 4096 pixels"),
    (
        "svg with script",
        "evil.svg",
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "not a PNG, JPEG or WebP image",
    ),
    (
        "text named png",
        "notes.png",
        lambda: b"just some text, not an image at all\n" * 10,
        "not a PNG",
    ),
    ("truncated png", "cut.png", _truncated_png, "not a PNG, JPEG or WebP image"),
    ("gif", "anim.gif", lambda: image_bytes("GIF"), "not a PNG, JPEG or WebP image"),
]


@pytest.mark.parametrize(
    ("case", "name", "make", "message"), BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS]
)
def test_bad_uploads_are_refused_and_nothing_is_stored(
    auth_client: Client, user: User, settings: Any, case: str, name: str, make: Any, message: str
) -> None:
    response = auth_client.post(reverse("profile_avatar"), {"avatar": upload(name, make())}, **HTMX)
    assert response.status_code == 400
    assert message in unescape(response.content.decode())
    user.refresh_from_db()
    assert not user.avatar
    assert stored_files(settings) == []
    assert not AuditEvent.objects.exists()


def test_avatar_errors_without_javascript_show_the_page(auth_client: Client, user: User) -> None:
    response = auth_client.post(reverse("profile_avatar"), {"avatar": upload("x.png", b"nope")})
    assert response.status_code == 400
    html = unescape(response.content.decode())
    assert "<html" in html
    assert "not a PNG, JPEG or WebP image" in html


# --- Username -------------------------------------------------------------------


def test_username_change_requires_recent_reauthentication(auth_client: Client, user: User) -> None:
    response = auth_client.post(reverse("profile_username_edit"), {"username": "alicia"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    user.refresh_from_db()
    assert user.username == "alice"


def test_username_change_asks_htmx_for_a_client_redirect(auth_client: Client, user: User) -> None:
    response = auth_client.get(reverse("profile_username_edit"), **HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == (
        reverse("account_reauthenticate") + "?next=%2Fsettings%2Fprofile%2F"
    )
    assert "<form" not in response.content.decode()


def test_username_change_after_reauthentication(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    response = auth_client.post(reverse("profile_username_edit"), {"username": " Alicia.M "})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.username == "alicia.m"
    event = AuditEvent.objects.get(action="username.changed")
    assert event.data == {"before": "alice", "after": "alicia.m"}
    # The new name signs in.
    other = Client()
    assert (
        other.post(
            reverse("account_login"), {"login": "alicia.m", "password": PASSWORD}
        ).status_code
        == 302
    )


def test_reauthentication_resumes_the_suspended_change(auth_client: Client, user: User) -> None:
    first = auth_client.post(reverse("profile_username_edit"), {"username": "alicia"})
    resumed = auth_client.post(first["Location"], {"password": PASSWORD})
    assert resumed.status_code == 302
    user.refresh_from_db()
    assert user.username == "alicia"


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        ("ａｄｍｉｎ", "reserved"),  # full-width letters fold to "admin"
        ("Admin", "reserved"),
        ("support", "reserved"),
        ("root", "reserved"),
        ("s.u.p.p.o.r.t", "reserved"),
        ("аdmin", "Use only letters a–z"),  # Cyrillic a
        ("ali\u200dce", "Use only letters a–z"),  # zero-width joiner
        ("alice\u200b", "Use only letters a–z"),  # zero-width space
        ("ab", "between 3 and 30"),
        ("-alice", "Use only letters a–z"),
        ("al..ice", "Use only letters a–z"),
        ("<script>", "Use only letters a–z"),
    ],
)
def test_username_rules(auth_client: Client, user: User, candidate: str, message: str) -> None:
    reauthenticate(auth_client)
    response = auth_client.post(reverse("profile_username_edit"), {"username": candidate}, **HTMX)
    assert response.status_code == 400
    assert message in unescape(response.content.decode())
    user.refresh_from_db()
    assert user.username == "alice"


@pytest.mark.parametrize("candidate", ["BOB", "ｂｏｂ", "Bob"])
def test_username_taken_regardless_of_case_or_width(
    auth_client: Client, user: User, user_factory: Any, candidate: str
) -> None:
    user_factory(username="bob")
    reauthenticate(auth_client)
    response = auth_client.post(reverse("profile_username_edit"), {"username": candidate})
    assert response.status_code == 400
    assert "This username is taken." in unescape(response.content.decode())
    user.refresh_from_db()
    assert user.username == "alice"


def test_signup_applies_the_same_username_rules(client: Client) -> None:
    response = client.post(
        reverse("account_signup"),
        {
            "email": "x@example.org",
            "username": "ａｄｍｉｎ",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 200
    assert "reserved" in unescape(response.content.decode())
    assert not User.objects.exists()


# --- The flows, called as the Account API would call them ------------------------


def api(user: User, **extra: Any) -> Actor:
    """A non-web surface, re-authenticated a moment ago."""
    return Actor(**{"user": user, "surface": "api", "reauthenticated_at": time.time(), **extra})


def test_the_name_flow_writes_and_audits(user: User) -> None:
    result = profile_flows.name_update(ctx=api(user, ip="198.51.100.4"), display_name="Alice M.")
    assert result.changed == ("display_name",)
    user.refresh_from_db()
    assert user.display_name == "Alice M."
    event = AuditEvent.objects.get(action="profile.updated")
    assert (event.subject, event.actor, event.ip_address) == (user, user, "198.51.100.4")
    assert event.data["before"] == {"display_name": "Alice Martin"}
    assert event.data["after"] == {"display_name": "Alice M."}


def test_the_same_values_change_and_record_nothing(user: User) -> None:
    result = profile_flows.name_update(ctx=api(user), display_name="Alice Martin")
    assert result.changed == ()
    assert not AuditEvent.objects.exists()


def test_the_details_flow_takes_only_personal_details(user: User) -> None:
    result = profile_flows.details_update(
        ctx=api(user), changes={"first_name": "Alice", "language": "fr"}
    )
    assert set(result.changed) == {"first_name", "language"}
    user.refresh_from_db()
    assert (user.first_name, user.language) == ("Alice", "fr")
    with pytest.raises(ValueError, match="not personal details"):
        profile_flows.details_update(ctx=api(user), changes={"is_staff": True})
    assert not User.objects.get(pk=user.pk).is_staff


@pytest.mark.parametrize(
    "reauthenticated_at", [None, time.time() - 24 * 3600], ids=["never", "long-ago"]
)
def test_the_username_flow_needs_a_recent_reauthentication(
    user: User, reauthenticated_at: float | None
) -> None:
    ctx = Actor(user=user, surface="api", reauthenticated_at=reauthenticated_at)
    with pytest.raises(ReauthenticationRequired):
        profile_flows.username_change(ctx=ctx, username="alice2")
    user.refresh_from_db()
    assert user.username == "alice"
    assert not AuditEvent.objects.exists()


def test_the_username_flow_normalises_checks_and_audits(
    user: User, user_factory: Callable[..., User]
) -> None:
    assert profile_flows.username_change(ctx=api(user), username=" Alice.New ") == "alice.new"
    user.refresh_from_db()
    assert user.username == "alice.new"
    event = AuditEvent.objects.get(action="username.changed")
    assert event.data == {"before": "alice", "after": "alice.new"}

    with pytest.raises(ValidationError):
        profile_flows.username_change(ctx=api(user), username="admin")
    user_factory(username="bob")
    with pytest.raises(profile_flows.UsernameTaken) as taken:
        profile_flows.username_change(ctx=api(user), username="bob")
    assert taken.value.code == "username.taken"
    assert User.objects.get(pk=user.pk).username == "alice.new"


FLOWS: dict[str, tuple[str, Callable[[Actor], Any]]] = {
    "name": ("name", lambda ctx: profile_flows.name_update(ctx=ctx, display_name="Mallory")),
    "details": (
        "profile",
        lambda ctx: profile_flows.details_update(ctx=ctx, changes={"first_name": "Mallory"}),
    ),
    "username": ("username", lambda ctx: profile_flows.username_change(ctx=ctx, username="mal")),
    "avatar": (
        "avatar",
        lambda ctx: profile_flows.avatar_upload(
            ctx=ctx, image=process_avatar(io.BytesIO(image_bytes()))
        ),
    ),
    "avatar remove": ("avatar", lambda ctx: profile_flows.avatar_remove(ctx=ctx)),
}


@pytest.mark.parametrize("name", FLOWS)
@pytest.mark.parametrize(("mode", "error"), [("read_only", PolicyDenied), ("off", Http404)])
def test_the_policy_refuses_the_flows_and_nothing_changes(
    user: User, policy: Callable[..., Any], name: str, mode: str, error: type[Exception]
) -> None:
    field, flow = FLOWS[name]
    policy(**{field: mode})
    before = User.objects.values().get(pk=user.pk)
    with pytest.raises(error):
        flow(api(user))
    assert User.objects.values().get(pk=user.pk) == before
    assert not AuditEvent.objects.exclude(action="policy.changed").exists()


def test_the_username_flow_is_refused_while_impersonating(user: User, staff_user: User) -> None:
    with pytest.raises(ImpersonationRefused):
        profile_flows.username_change(
            ctx=api(user, impersonator_id=staff_user.pk, surface="web"), username="alice2"
        )
    assert User.objects.get(pk=user.pk).username == "alice"


def test_the_avatar_flows_store_and_remove_the_picture(user: User) -> None:
    profile_flows.avatar_upload(ctx=api(user), image=process_avatar(io.BytesIO(image_bytes())))
    user.refresh_from_db()
    assert user.avatar.name.endswith(".webp")
    assert profile_flows.avatar_remove(ctx=api(user)) is True
    assert profile_flows.avatar_remove(ctx=api(user)) is False
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "avatar.changed",
        "avatar.removed",
    ]
