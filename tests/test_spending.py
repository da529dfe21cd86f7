"""Nobody spends without the right: every path by which money leaves the studio is refused
to a user without the site-level right, to a reviewer, and with an account not offered."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from tests.chain_helpers import stored_clip
from tests.conftest import grant_spending
from videos.models import (
    Clip,
    ClipStatus,
    LedgerEntry,
    Membership,
    ModelPrice,
    Project,
    ProviderAccount,
    Role,
)

pytestmark = pytest.mark.django_db

GENERATE = {
    "model": "kling-v1-6",
    "prompt": "A lantern on a pier",
    "duration": "5",
    "aspect_ratio": "16:9",
    "resolution": "std",
}
CONTINUE = {"prompt": "Onwards", "duration": "5", "aspect_ratio": "16:9", "resolution": "std"}


def person(name: str):
    return get_user_model().objects.create_user(name, f"{name}@example.com")


@pytest.fixture
def kling(project):
    account = ProviderAccount.objects.create(
        kind="kling",
        label="Kling",
        base_url="http://127.0.0.1:9/sandbox/kling",
        credential="AKspend0123456789",
        secret_key="sandbox-secret-AKspend0123456789",
    )
    account.projects.add(project)
    return account


@pytest.fixture
def source(project, user, kling):
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
            "provider_video_id": "v",
        },
    )


@pytest.fixture
def failed(project, user, kling):
    return Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=kling,
        model="kling-v1-6",
        prompt="A lantern",
        params={"duration": 5, "aspect_ratio": "16:9", "resolution": "std"},
        status=ClipStatus.FAILED,
    )


@pytest.fixture
def creator_without_right(project):
    casey = person("noel")
    Membership.objects.create(project=project, user=casey, role=Role.CREATOR)
    return casey


def spending_paths(project, kling, source, failed):
    """(what, method, url, data) for each way a click can spend money."""
    return [
        (
            "generate",
            f"/projects/{project.pk}/clips/new/",
            {"provider_account": kling.pk, **GENERATE},
        ),
        ("retry", f"/clips/{failed.pk}/retry/", {}),
        ("extend", f"/clips/{source.pk}/extend/", {"prompt": "More"}),
        (
            "continue",
            f"/clips/{source.pk}/continue/",
            {"target": f"{kling.pk}:kling-v1-6", **CONTINUE},
        ),
    ]


@pytest.mark.parametrize("path", ["generate", "retry", "extend", "continue"])
def test_a_creator_without_the_site_right_cannot_spend(
    client, project, kling, source, failed, creator_without_right, path
):
    before = Clip.objects.count()
    client.force_login(creator_without_right)
    _, url, data = next(p for p in spending_paths(project, kling, source, failed) if p[0] == path)
    response = client.post(url, data)
    assert response.status_code == 403
    assert Clip.objects.count() == before
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("path", ["generate", "retry", "extend", "continue"])
def test_a_reviewer_with_the_site_right_still_cannot_spend(
    client, project, kling, source, failed, path
):
    riley = grant_spending(person("riley"))
    Membership.objects.create(project=project, user=riley, role=Role.REVIEWER)
    before = Clip.objects.count()
    client.force_login(riley)
    _, url, data = next(p for p in spending_paths(project, kling, source, failed) if p[0] == path)
    assert client.post(url, data).status_code == 403
    assert Clip.objects.count() == before


@pytest.mark.parametrize("path", ["generate", "retry"])
def test_an_account_not_offered_to_the_project_cannot_be_spent_with(
    client, user, project, kling, source, failed, path
):
    kling.projects.clear()
    before = Clip.objects.count()
    client.force_login(user)
    _, url, data = next(p for p in spending_paths(project, kling, source, failed) if p[0] == path)
    response = client.post(url, data, follow=True)
    assert Clip.objects.count() == before
    assert response.status_code in {200, 403}


def test_the_right_lets_a_creator_spend(client, user, project, kling):
    client.force_login(user)
    response = client.post(
        f"/projects/{project.pk}/clips/new/", {"provider_account": kling.pk, **GENERATE}
    )
    assert response.status_code == 302
    assert Clip.objects.filter(status=ClipStatus.QUEUED).count() == 1


def test_a_user_without_the_right_cannot_create_a_project_and_inherit_accounts(client, kling):
    ProviderAccount.objects.filter(pk=kling.pk).update(all_projects=True)
    outsider = person("olly")
    client.force_login(outsider)
    page = client.get("/projects/").content.decode()
    assert "Create project" not in page
    assert "needs the right to spend" in page
    assert client.post("/projects/", {"name": "Mine"}).status_code == 403
    assert not Project.objects.filter(name="Mine").exists()


def test_new_accounts_are_offered_to_no_project_until_staff_choose(project):
    account = ProviderAccount.objects.create(
        kind="apimart", label="New", base_url="https://api.example.com", credential="sk-new-1234"
    )
    assert not account.all_projects
    assert not ProviderAccount.objects.enabled_for(project).filter(pk=account.pk).exists()


def test_a_budget_refuses_a_model_without_a_price(client, user, project, kling):
    Project.objects.filter(pk=project.pk).update(budget=Decimal("5.00"))
    client.force_login(user)
    html = client.post(
        f"/projects/{project.pk}/clips/new/", {"provider_account": kling.pk, **GENERATE}
    ).content.decode()
    assert "has no price" in html
    assert not Clip.objects.exists()
    # With a price it goes through.
    ModelPrice.objects.create(kind="kling", model="kling-v1-6", per_clip=Decimal("0.50"))
    response = client.post(
        f"/projects/{project.pk}/clips/new/", {"provider_account": kling.pk, **GENERATE}
    )
    assert response.status_code == 302


def test_the_right_given_through_a_group_shows_the_buttons_that_spend(
    client, project, kling, failed, creator_without_right
):
    """The pages read the right with the row they need (permissions.spending_right_granted):
    given to the user or to one of their groups, as has_perm decides."""
    from django.contrib.auth.models import Group, Permission

    Clip.objects.filter(pk=failed.pk).update(error_message="The provider refused the prompt.")
    client.force_login(creator_without_right)
    page = f"/projects/{project.pk}/"
    poll = {"HX-Request": "true"}
    assert "New clip" not in client.get(page).content.decode()
    assert "Retry" not in client.get(f"/clips/{failed.pk}/", headers=poll).content.decode()

    makers = Group.objects.create(name="makers")
    makers.permissions.add(Permission.objects.get(codename="spend"))
    creator_without_right.groups.add(makers)
    assert "New clip" in client.get(page).content.decode()
    assert "Retry" in client.get(f"/clips/{failed.pk}/", headers=poll).content.decode()

    creator_without_right.groups.remove(makers)
    assert "New clip" not in client.get(page).content.decode()
