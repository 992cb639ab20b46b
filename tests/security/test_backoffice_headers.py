from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/accounts/user/",
        "/admin/accounts/auditevent/",
        "/admin/accounts/accountpolicy/1/change/",
        "/admin/accounts/user/{staff}/change/",
    ],
)
def test_back_office_pages_have_the_csp_and_no_inline_script(
    staff_client: Client, staff_user, url: str
) -> None:
    staff_user.is_superuser = True
    staff_user.save(update_fields=["is_superuser"])
    response = staff_client.get(url.format(staff=staff_user.pk))
    assert response.status_code == 200
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    html = response.content.decode()
    for chunk in html.split("<script")[1:]:
        tag = chunk.split(">", 1)[0]
        assert "src=" in tag or 'type="application/json"' in tag, f"inline script: <script{tag}>"
    assert "css/admin.css" in html
