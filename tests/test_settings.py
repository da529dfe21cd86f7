"""Settings come from the environment and refuse bad values loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 50,
    "FERNET_KEYS": "q2Qn4bQkq0e3Ux7Dk5p0m0fV2j6sV1rRkJ0cY8w3b1E=",
    "ALLOWED_HOSTS": "studio.example.com",
}


def run_django(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SANDBOX", "DATABASE_URL"}}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "studio.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sandbox_cannot_be_enabled_in_production():
    result = run_django("", **PRODUCTION, SANDBOX="1")
    assert result.returncode != 0
    assert "SANDBOX=1 is refused when DEBUG is off" in result.stderr


def test_production_settings_serve_no_sandbox_urls():
    code = (
        "from django.urls import resolve, Resolver404\n"
        "from django.conf import settings\n"
        "try:\n    resolve('/sandbox/apimart/v1/videos/generations'); print('reachable')\n"
        "except Resolver404:\n    print('unreachable')\n"
        "print('sandbox' in settings.INSTALLED_APPS)"
    )
    result = run_django(code.replace("\n", "\n"), **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["unreachable", "False"]


def test_a_malformed_boolean_stops_start_up_with_its_name():
    result = run_django("", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_a_malformed_number_stops_start_up_with_its_name():
    result = run_django("", Q_WORKERS="many")
    assert "Q_WORKERS='many' is not a whole number" in result.stderr


def test_production_requires_a_secret_key_and_fernet_keys():
    env = {**PRODUCTION, "SECRET_KEY": ""}
    assert "SECRET_KEY must be set" in run_django("", **env).stderr
    env = {**PRODUCTION, "FERNET_KEYS": ""}
    assert "FERNET_KEYS must be set" in run_django("", **env).stderr


def test_database_url_switches_to_postgresql_and_redis_url_to_the_redis_broker():
    code = (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.Q_CLUSTER.get('redis'), 'orm' in s.Q_CLUSTER)"
    )
    result = run_django(
        code, DATABASE_URL="postgres://u@db.example:5432/clips", REDIS_URL="redis://cache:6379/1"
    )
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "redis://cache:6379/1",
        "False",
    ]


@pytest.mark.parametrize("setting, expected", [("", "True 5"), ("1", "True 5"), ("0", "None None")])
def test_postgresql_prepares_statements_unless_told_not_to(setting, expected):
    code = (
        "from django.conf import settings as s; o = s.DATABASES['default']['OPTIONS']; "
        "print(o.get('server_side_binding'), o.get('prepare_threshold'))"
    )
    env = {"DATABASE_URL": "postgres://u@db.example:5432/clips"}
    if setting:
        env["DATABASE_PREPARED_STATEMENTS"] = setting
    result = run_django(code, **env)
    assert result.stdout.split() == expected.split(), result.stderr


@pytest.mark.django_db
def test_prepared_statements_run_on_the_test_database():
    """What production runs is what the suite runs on PostgreSQL: the connection prepares
    a statement after a few runs, and the ORM's queries work with values sent apart."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no prepared statements to check")
    assert connection.settings_dict["OPTIONS"]["server_side_binding"] is True
    from django.contrib.auth import get_user_model

    for _ in range(6):
        assert get_user_model().objects.filter(pk=-1).first() is None
    assert connection.connection.prepare_threshold == 5
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] >= 1


def test_s3_settings_switch_default_storage_to_s3():
    code = "from django.conf import settings as s; print(s.STORAGES['default']['BACKEND'])"
    result = run_django(code, S3_BUCKET="clips", S3_ENDPOINT_URL="http://127.0.0.1:9000")
    assert result.stdout.strip() == "storages.backends.s3.S3Storage"
