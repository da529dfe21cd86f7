"""Roles on the chain and review side: reviewers comment and decide but never generate,
extend, continue, export or spend; creators and admins do; non-members see nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.chain_helpers import stored_clip
from tests.conftest import grant_spending
from videos.models import (
    ChainExport,
    Clip,
    ClipKind,
    Comment,
    Decision,
    ExportStatus,
    LedgerEntry,
    Membership,
    ProviderAccount,
    Role,
)

pytestmark = pytest.mark.django_db


def member(project, name: str, role: str):
    # No password: the tests log in with force_login, and hashing one costs a quarter second.
    person = get_user_model().objects.create_user(name, f"{name}@example.com")
    if role:
        Membership.objects.create(project=project, user=person, role=role)
    if role in {Role.ADMIN, Role.CREATOR}:
        grant_spending(person)
    return person


@pytest.fixture
def reviewer(project):
    return member(project, "riley", Role.REVIEWER)


@pytest.fixture
def admin(project):
    return member(project, "ada", Role.ADMIN)


@pytest.fixture
def stranger(project):
    return member(project, "sam", "")


@pytest.fixture
def kling(db):
    return ProviderAccount.objects.create(
        all_projects=True,
        kind="kling",
        label="Kling",
        base_url="http://127.0.0.1:9/sandbox/kling",
        credential="AKroles0123456789",
        secret_key="sandbox-secret-AKroles0123456789",
    )


@pytest.fixture
def clip(project, user, kling):
    return stored_clip(
        project=project,
        user=user,
        account=kling,
        seconds=5,
        size=(320, 180),
        model="kling-v1-6",
        params={
            "duration": 5,
            "aspect_ratio": "16:9",
            "resolution": "std",
            "provider_video_id": "vid-roles",
        },
    )


@pytest.fixture
def takes(project, user, kling, clip):
    return tuple(
        stored_clip(
            project=project,
            user=user,
            account=kling,
            seconds=seconds,
            parent=clip,
            kind=ClipKind.EXTEND,
            new_from=5,
            size=(160, 90),
            model="kling-v1-6",
            params={"duration": 5, "provider_video_id": f"vid-take-{seconds}"},
        )
        for seconds in (9.5, 10)
    )


CONTINUE = {
    "prompt": "Onwards",
    "duration": "5",
    "aspect_ratio": "16:9",
    "resolution": "std",
}


def test_reviewer_cannot_generate(client, reviewer, project, kling):
    client.force_login(reviewer)
    assert client.get(f"/projects/{project.pk}/clips/new/").status_code == 403
    response = client.post(
        f"/projects/{project.pk}/clips/new/",
        {"provider_account": kling.pk, "model": "kling-v1-6", "prompt": "x", "duration": "5"},
    )
    assert response.status_code == 403
    assert not Clip.objects.exists()


def test_reviewer_cannot_extend(client, reviewer, clip):
    client.force_login(reviewer)
    assert client.get(f"/clips/{clip.pk}/extend/").status_code == 403
    assert client.post(f"/clips/{clip.pk}/extend/", {"prompt": "More"}).status_code == 403
    assert not Clip.objects.filter(parent=clip).exists()
    assert not LedgerEntry.objects.exists()


def test_reviewer_cannot_continue_from_the_last_frame(client, reviewer, clip, kling):
    client.force_login(reviewer)
    assert client.get(f"/clips/{clip.pk}/continue/").status_code == 403
    response = client.post(
        f"/clips/{clip.pk}/continue/", {"target": f"{kling.pk}:kling-v1-6", **CONTINUE}
    )
    assert response.status_code == 403
    assert not Clip.objects.filter(parent=clip).exists()


def test_reviewer_cannot_choose_the_main_take(client, reviewer, takes):
    first, second = takes
    client.force_login(reviewer)
    assert client.post(f"/clips/{second.pk}/main-take/").status_code == 403
    assert not Clip.objects.filter(is_main_line=True).exists()


def test_reviewer_cannot_export_but_can_download_a_finished_export(client, user, reviewer, clip):
    client.force_login(reviewer)
    assert client.post(f"/clips/{clip.pk}/export/").status_code == 403
    assert not ChainExport.objects.exists()
    finished = ChainExport.objects.create(
        root=clip,
        created_by=user,
        segments=[clip.pk],
        status=ExportStatus.READY,
        file_key=clip.file_key,
        duration_seconds=5,
    )
    page = client.get(f"/clips/{clip.pk}/chain/").content.decode()
    assert "Download MP4" in page and "Export again" not in page
    response = client.get(f"/exports/{finished.pk}/video.mp4")
    assert response.status_code == 200


def test_reviewer_sees_no_extend_or_continue_actions_on_the_clip_page(client, reviewer, clip):
    client.force_login(reviewer)
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert f'href="/clips/{clip.pk}/extend/"' not in page
    assert f'href="/clips/{clip.pk}/continue/"' not in page
    assert "creators extend and continue clips" in page
    assert 'name="verdict" value="approved"' in page  # but the review is open to them


def test_reviewer_comments_and_decides(client, reviewer, clip):
    client.force_login(reviewer)
    comment = client.post(
        f"/clips/{clip.pk}/comments/", {"body": "Warmer light", "timecode": "1", "scope": "clip"}
    )
    decision = client.post(f"/clips/{clip.pk}/decisions/", {"verdict": "changes", "scope": "clip"})
    assert comment.status_code == decision.status_code == 302
    assert Comment.objects.get().author == reviewer
    assert Decision.objects.get().user == reviewer


def test_creator_sees_and_uses_extend_and_continue(client, user, clip, kling):
    client.force_login(user)
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert f'href="/clips/{clip.pk}/extend/"' in page
    assert f'href="/clips/{clip.pk}/continue/"' in page
    extended = client.post(f"/clips/{clip.pk}/extend/", {"prompt": "More"})
    continued = client.post(
        f"/clips/{clip.pk}/continue/", {"target": f"{kling.pk}:kling-v1-6", **CONTINUE}
    )
    assert extended.status_code == continued.status_code == 302
    assert sorted(Clip.objects.filter(parent=clip).values_list("kind", flat=True)) == [
        "continue",
        "extend",
    ]


def test_admin_extends_chooses_the_main_take_and_exports(client, admin, clip, takes):
    first, second = takes
    client.force_login(admin)
    assert client.post(f"/clips/{second.pk}/extend/", {"prompt": "More"}).status_code == 302
    assert client.post(f"/clips/{second.pk}/main-take/").status_code == 302
    assert Clip.objects.get(is_main_line=True) == second
    assert client.post(f"/clips/{clip.pk}/export/").status_code == 302
    assert ChainExport.objects.get().segments == [clip.pk, second.pk]


def test_non_members_see_nothing_of_a_chain(client, stranger, clip, user):
    client.force_login(stranger)
    comment = Comment.objects.create(clip=clip, author=user, body="Private")
    done = ChainExport.objects.create(root=clip, segments=[clip.pk], file_key=clip.file_key)
    for url in (
        f"/clips/{clip.pk}/chain/",
        f"/clips/{clip.pk}/extend/",
        f"/clips/{clip.pk}/continue/",
        f"/exports/{done.pk}/video.mp4",
    ):
        assert client.get(url).status_code == 404, url
    for url in (
        f"/clips/{clip.pk}/comments/",
        f"/clips/{clip.pk}/decisions/",
        f"/comments/{comment.pk}/resolve/",
        f"/clips/{clip.pk}/export/",
    ):
        assert (
            client.post(url, {"body": "x", "verdict": "approved", "scope": "clip"}).status_code
            == 404
        ), url
    assert Comment.objects.count() == 1 and not Decision.objects.exists()
