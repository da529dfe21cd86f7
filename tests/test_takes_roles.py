"""Who may compare takes and pick one: every member compares, creators and admins pick,
reviewers only look, non-members get a 404 and visitors the login page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.chain_helpers import stored_clip
from tests.conftest import grant_spending
from videos.models import Membership, ProviderAccount, Role, TakeGroup

pytestmark = pytest.mark.django_db


def person(project, name: str, role: str):
    who = get_user_model().objects.create_user(name, f"{name}@example.com")
    if role:
        Membership.objects.create(project=project, user=who, role=role)
    if role in {Role.ADMIN, Role.CREATOR}:
        grant_spending(who)
    return who


@pytest.fixture
def group(project, user):
    account = ProviderAccount.objects.create(
        all_projects=True,
        kind="kling",
        label="Kling",
        base_url="http://127.0.0.1:9/sandbox/kling",
        credential="AKtakes0123456789",
        secret_key="sandbox-secret-AKtakes0123456789",
    )
    group = TakeGroup.objects.create(project=project, created_by=user)
    for n in range(2):
        stored_clip(
            project=project,
            user=user,
            account=account,
            seconds=2,
            size=(160, 90),
            model="kling-v1-6",
            prompt=f"Take {n}",
            take_group=group,
        )
    return group


ROLES = [
    # role, sees the page, may pick
    (Role.ADMIN, 200, 302),
    (Role.CREATOR, 200, 302),
    (Role.REVIEWER, 200, 403),
    ("", 404, 404),
]


@pytest.mark.parametrize("role, page_status, pick_status", ROLES)
def test_the_takes_page_and_the_pick_by_role(
    client, project, group, role, page_status, pick_status
):
    client.force_login(person(project, "someone", role))
    take = group.takes.order_by("pk").first()

    page = client.get(f"/takes/{group.pk}/")
    assert page.status_code == page_status
    if page_status == 200:
        assert ("Pick this take" in page.content.decode()) is (pick_status == 302)

    assert client.post(f"/takes/{group.pk}/pick/", {"take": take.pk}).status_code == pick_status
    group.refresh_from_db()
    assert (group.pick_id == take.pk) is (pick_status == 302)


def test_visitors_are_sent_to_log_in(client, group):
    for response in (
        client.get(f"/takes/{group.pk}/"),
        client.post(f"/takes/{group.pk}/pick/", {"take": group.takes.first().pk}),
    ):
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_takes_clip_page_says_which_take_is_the_pick(client, user, group):
    first, second = group.takes.order_by("pk")
    group.pick = second
    group.save(update_fields=["pick"])
    client.force_login(user)
    page = client.get(f"/clips/{first.pk}/").content.decode()
    assert "One of 2 takes of one prompt." in page
    assert f'The team picked <a href="/clips/{second.pk}/">clip {second.pk}</a>' in page
    assert f'href="/takes/{group.pk}/"' in page
    assert "★ This take is the pick." in client.get(f"/clips/{second.pk}/").content.decode()


def test_only_get_and_post_where_meant(client, user, group):
    client.force_login(user)
    assert client.post(f"/takes/{group.pk}/").status_code == 405
    assert client.get(f"/takes/{group.pk}/pick/").status_code == 405
