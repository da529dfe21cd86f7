"""Who may make and revoke review links, and what each kind of visitor gets from every new
address: admins make and revoke; creators, reviewers and visitors cannot; non-members and
guests get a 404; a guest's own addresses work only with the link's token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.chain_helpers import stored_clip
from tests.conftest import grant_spending
from videos import review_links
from videos.models import ClipKind, Membership, ProviderAccount, ReviewLink, Role, TakeGroup

pytestmark = pytest.mark.django_db


def person(project, name: str, role: str):
    who = get_user_model().objects.create_user(name, f"{name}@example.com")
    if role:
        Membership.objects.create(project=project, user=who, role=role)
    if role in {Role.ADMIN, Role.CREATOR}:
        grant_spending(who)
    return who


@pytest.fixture
def setup(project, user):
    account = ProviderAccount.objects.create(
        all_projects=True,
        kind="kling",
        label="Kling",
        base_url="http://127.0.0.1:9/sandbox/kling",
        credential="AKmatrix0123456789",
        secret_key="sandbox-secret-AKmatrix0123456789",
    )
    root = stored_clip(project=project, user=user, account=account, seconds=1, size=(160, 90))
    take = stored_clip(
        project=project,
        user=user,
        account=account,
        seconds=1,
        size=(160, 90),
        parent=root,
        kind=ClipKind.CONTINUE,
    )
    admin = person(project, "ada", Role.ADMIN)
    made = review_links.create_link(
        clip=root,
        scope="chain",
        user=admin,
        expires_at=timezone.now() + timedelta(days=1),
        label="Matrix",
    )
    group = TakeGroup.objects.create(project=project, created_by=user)
    return {"root": root, "take": take, "admin": admin, "made": made, "group": group}


MATRIX = [
    # role, share page, make a link, revoke
    (Role.ADMIN, 200, 302, 302),
    (Role.CREATOR, 403, 403, 403),
    (Role.REVIEWER, 403, 403, 403),
    ("", 404, 404, 404),
]


@pytest.mark.parametrize("role, page, make, revoke", MATRIX)
def test_review_link_management_by_role(client, project, setup, role, page, make, revoke):
    who = setup["admin"] if role == Role.ADMIN else person(project, "someone", role)
    client.force_login(who)
    take = setup["take"]
    assert client.get(f"/clips/{take.pk}/share/").status_code == page
    response = client.post(f"/clips/{take.pk}/share/", {"scope": "clip", "expires_in": "1"})
    assert response.status_code == make
    assert ReviewLink.objects.count() == (2 if make == 302 else 1)
    link = setup["made"].link
    assert client.post(f"/review-links/{link.pk}/revoke/").status_code == revoke
    link.refresh_from_db()
    assert (link.revoked_at is not None) is (revoke == 302)


def test_visitors_are_sent_to_log_in_for_management(setup):
    visitor = Client()
    for response in (
        visitor.get(f"/clips/{setup['take'].pk}/share/"),
        visitor.post(f"/review-links/{setup['made'].link.pk}/revoke/"),
    ):
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_every_new_address_gives_a_guest_a_404_except_their_own(setup):
    made, root, take, group = setup["made"], setup["root"], setup["take"], setup["group"]
    visitor = Client()
    assert visitor.get(made.path).status_code == 200
    token = made.token
    own = [
        ("get", f"/review/{token}/clips/{root.pk}/video.mp4", 200),
        ("get", f"/review/{token}/clips/{root.pk}/poster.jpg", 404),  # no poster stored
        ("post", f"/review/{token}/comments/", 302),
        ("post", f"/review/{token}/decisions/", 302),
    ]
    studio = [
        ("get", f"/takes/{group.pk}/"),
        ("post", f"/takes/{group.pk}/pick/"),
        ("get", f"/clips/{take.pk}/share/"),
        ("post", f"/clips/{take.pk}/share/"),
        ("post", f"/review-links/{made.link.pk}/revoke/"),
        ("post", f"/clips/{take.pk}/trim/"),
    ]
    data = {"name": "Guest", "body": "Hi", "verdict": "approved"}
    for method, path, status in own:
        assert getattr(visitor, method)(path, data).status_code == status, path
    for method, path in studio:
        assert getattr(visitor, method)(path, data).status_code == 404, path
    # Guest addresses with another token reach nothing.
    for method, path, _ in own:
        # Change the first character to one it is not (a token may start with "x").
        wrong = path.replace(token, ("y" if token[0] == "x" else "x") + token[1:])
        assert getattr(visitor, method)(wrong, data).status_code == 404, wrong


def test_guest_pages_take_only_their_methods(setup):
    made, root = setup["made"], setup["root"]
    visitor = Client()
    assert visitor.get(made.path + "comments/").status_code == 405
    assert visitor.get(made.path + "decisions/").status_code == 405
    assert visitor.post(f"/review/{made.token}/clips/{root.pk}/video.mp4").status_code == 405
