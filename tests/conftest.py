from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests import queue
from videos.models import Membership, Project, ProviderAccount, ProviderKind, Role


@pytest.fixture(autouse=True)
def fast_sandbox(settings, tmp_path):
    """Sandbox tasks finish in ~2 s with small frames; files go to a per-test folder."""
    settings.SANDBOX_TASK_SECONDS = 1.5
    settings.SANDBOX_MAX_EDGE = 480
    settings.TRACK_POLL_SECONDS = 0.25
    settings.TRACK_BUDGET_SECONDS = 5
    settings.DATA_DIR = tmp_path / "data"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media"},
        },
    }


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("casey", "casey@example.com", "pw-casey-123")


@pytest.fixture
def project(user):
    project = Project.objects.create(name="Launch film", created_by=user)
    Membership.objects.create(project=project, user=user, role=Role.CREATOR)
    return project


@pytest.fixture
def sandbox_apimart(db, live_server):
    return ProviderAccount.objects.create(
        kind=ProviderKind.APIMART,
        label="apimart (sandbox)",
        base_url=f"{live_server.url}/sandbox/apimart",
        credential="sk-sandbox-test-key-0001",
    )


@pytest.fixture
def drain_queue(db):
    queue.purge()
    yield queue.drain
    queue.purge()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    from tests.seaweedfs import seaweedfs

    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_storage(settings, s3_server):
    """Point default storage at a fresh bucket on the SeaweedFS server."""
    import uuid

    import boto3

    bucket = f"clips-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
    ).create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_server.endpoint_url,
                "access_key": s3_server.access_key,
                "secret_key": s3_server.secret_key,
                "region_name": s3_server.region,
                "default_acl": None,
                "file_overwrite": False,
                "querystring_auth": True,
                "addressing_style": "path",
                "signature_version": "s3v4",
            },
        },
    }
    return bucket
