"""/healthz says the process is alive; /readyz says what is down, by name, with a 503."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_healthz_answers_without_touching_the_database(db, client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ok_when_database_broker_and_storage_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
    }


@pytest.mark.django_db
def test_readyz_names_a_redis_broker_that_is_down(client, settings):
    port = closed_port()
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": f"redis://127.0.0.1:{port}/0"}
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["down"] == ["broker"]
    assert body["checks"]["broker"].startswith("Redis broker unreachable: ")
    assert f"127.0.0.1:{port}" in body["checks"]["broker"]
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_readyz_names_s3_storage_that_is_down(client, settings):
    port = closed_port()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "clips",
                "endpoint_url": f"http://127.0.0.1:{port}",
                "access_key": "k",
                "secret_key": "s",
                "region_name": "us-east-1",
            },
        },
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["storage"]
    assert body["checks"]["storage"].startswith("S3 bucket 'clips' unreachable: ")


@pytest.mark.s3
@pytest.mark.django_db
def test_readyz_reaches_a_real_s3_bucket(client, s3_storage):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["storage"] == "ok"


def test_readyz_names_a_database_that_is_down(tmp_path):
    # A process of its own: the test session's database connection stays untouched.
    script = (
        "import django, json\n"
        "django.setup()\n"
        "from django.test.utils import setup_test_environment\n"
        "setup_test_environment()\n"
        "from django.test import Client\n"
        "response = Client().get('/readyz')\n"
        "print(json.dumps({'status': response.status_code, 'body': response.json()}))\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/clipchain",
        "REDIS_URL": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503
    body = answer["body"]
    # The ORM broker lives in the same database, so it is down with it.
    assert body["down"] == ["database", "broker"]
    assert body["checks"]["database"].startswith("postgresql database unreachable: ")
    assert body["checks"]["storage"] == "ok"
