"""Login throttling: ten wrong passwords lock that username on that address out for 15 minutes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

WRONG = "not-the-password"


@pytest.fixture(autouse=True)
def fast_hashing(settings, user):
    # Sixty logins through PBKDF2 take half a minute; throttling does not care how a
    # password is hashed.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user.set_password("pw-casey-123")
    user.save(update_fields=["password"])


def log_in(client: Client, username: str, password: str, *, path: str = "/login/"):
    return client.post(path, {"username": username, "password": password})


def fail_ten_times(client: Client, username: str, *, path: str = "/login/"):
    responses = [log_in(client, username, WRONG, path=path) for _ in range(10)]
    assert [r.status_code for r in responses[:9]] == [200] * 9  # the form, saying "wrong"
    return responses[-1]


def is_logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_ten_wrong_passwords_then_the_right_one_is_refused_with_the_lockout_page(client, user):
    tenth = fail_ten_times(client, "casey")
    assert tenth.status_code == 429
    response = log_in(client, "casey", "pw-casey-123")
    html = response.content.decode()
    assert response.status_code == 429 and not is_logged_in(client)
    assert "<h1>Too many failed logins</h1>" in html
    assert "Logging in as <strong>casey</strong> from this network is paused" in html
    assert "Try again in 15 minutes." in html
    # The studio's own layout, not a bare text page.
    assert '<header class="topbar">' in html and "· Clipchain</title>" in html


def test_other_users_and_the_same_user_elsewhere_are_unaffected(client, user):
    get_user_model().objects.create_user("sam", "sam@example.com", "pw-sam-12345")
    fail_ten_times(client, "casey")

    colleague = Client()  # same address, another username
    assert log_in(colleague, "sam", "pw-sam-12345").status_code == 302
    assert is_logged_in(colleague)

    elsewhere = Client(REMOTE_ADDR="203.0.113.7")  # the real casey, from home
    assert log_in(elsewhere, "casey", "pw-casey-123").status_code == 302
    assert is_logged_in(elsewhere)


def test_the_admin_login_is_throttled_too(client, user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    tenth = fail_ten_times(client, "casey", path="/admin/login/")
    assert tenth.status_code == 429
    response = log_in(client, "casey", "pw-casey-123", path="/admin/login/")
    assert response.status_code == 429 and not is_logged_in(client)
    assert "Try again in 15 minutes." in response.content.decode()


def test_after_the_wait_the_right_password_works(client, user):
    fail_ten_times(client, "casey")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert log_in(client, "casey", "pw-casey-123").status_code == 302
    assert is_logged_in(client)


def test_a_successful_login_forgets_earlier_typos(client, user):
    for _ in range(9):
        log_in(client, "casey", WRONG)
    assert log_in(client, "casey", "pw-casey-123").status_code == 302
    client.logout()
    for _ in range(9):
        assert log_in(client, "casey", WRONG).status_code == 200
    assert log_in(client, "casey", "pw-casey-123").status_code == 302
