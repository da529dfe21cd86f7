"""Project settings: admins add, re-role and remove members and set the budget."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.browser import shot
from videos.models import AuditEvent, Membership, Project, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(user, project):
    Membership.objects.filter(project=project, user=user).update(role=Role.ADMIN)
    return user


@pytest.fixture
def sam(db):
    return get_user_model().objects.create_user("sam", "Sam@Example.com", "pw-sam-12345")


@pytest.fixture
def colleague(admin_user, sam):
    """Sam already works with the admin, on another project."""
    other = Project.objects.create(name="Trailer", created_by=admin_user)
    Membership.objects.create(project=other, user=admin_user, role=Role.ADMIN)
    Membership.objects.create(project=other, user=sam, role=Role.REVIEWER)
    return sam


def settings_url(project, *rest: str) -> str:
    return f"/projects/{project.pk}/settings/" + "".join(f"{part}/" for part in rest)


def test_an_admin_sees_members_and_the_budget_on_the_settings_page(client, admin_user, project):
    client.force_login(admin_user)
    html = client.get(settings_url(project)).content.decode()
    assert "<h2>Members</h2>" in html and "casey" in html and "(you)" in html
    assert "Username or email" in html and "Budget (USD)" in html
    assert "no budget set" in html
    project_page = client.get(f"/projects/{project.pk}/").content.decode()
    assert f'href="/projects/{project.pk}/settings/"' in project_page


def test_other_members_get_a_403_and_strangers_a_404(client, user, project, sam):
    client.force_login(user)  # a creator
    assert client.get(settings_url(project)).status_code == 403
    assert client.post(settings_url(project, "members"), {"who": "sam"}).status_code == 403
    assert 'settings/"' not in client.get(f"/projects/{project.pk}/").content.decode()
    stranger = Client()
    stranger.force_login(sam)
    assert stranger.get(settings_url(project)).status_code == 404
    assert stranger.post(settings_url(project, "budget"), {"budget": "1"}).status_code == 404


def test_an_admin_adds_a_colleague_by_username_or_email(client, admin_user, project, colleague):
    sam = colleague
    client.force_login(admin_user)
    response = client.post(
        settings_url(project, "members"), {"who": "sam@example.com", "role": "reviewer"}
    )
    assert response.status_code == 302 and response["Location"] == settings_url(project)
    assert project.role_of(sam) == Role.REVIEWER
    html = client.get(response["Location"]).content.decode()
    assert "Added sam as reviewer." in html
    event = AuditEvent.objects.get(action="member.added")
    assert (event.actor, event.project, event.target) == (admin_user, project, "sam")


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("nobody", "Nobody in your projects has this username or email."),
        ("casey", "casey is already a member (admin)."),
        ("", "This field is required."),
    ],
)
def test_adding_someone_who_cannot_be_added_is_explained_next_to_the_field(
    client, admin_user, project, who, message
):
    client.force_login(admin_user)
    response = client.post(settings_url(project, "members"), {"who": who, "role": "creator"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_who-error"' in html and message in html
    assert project.memberships.count() == 1


def test_someone_the_admin_shares_no_project_with_cannot_be_added(client, admin_user, project, sam):
    client.force_login(admin_user)
    url = settings_url(project, "members")
    html = client.post(url, {"who": "sam", "role": "creator"}).content.decode()
    assert 'id="id_who-error"' in html
    assert "Nobody in your projects has this username or email." in html
    assert project.role_of(sam) is None
    assert not AuditEvent.objects.exists()


def _who_error(client, url: str, who: str) -> str:
    html = client.post(url, {"who": who, "role": "creator"}).content.decode()
    return html.split('id="id_who-error" role="alert">', 1)[1].split("</small>", 1)[0]


def test_the_answer_does_not_tell_whether_an_email_has_an_account(client, admin_user, project, sam):
    get_user_model().objects.create_user("sam2", "sam@example.com", "pw-sam2-12345")
    client.force_login(admin_user)
    url = settings_url(project, "members")
    for who in ("sam", "Sam@Example.com"):  # accounts that exist (the email twice over)
        assert _who_error(client, url, who) == _who_error(client, url, "nobody@example.com")
    assert project.memberships.count() == 1


def test_an_email_two_colleagues_share_asks_for_the_username(
    client, admin_user, project, colleague
):
    twin = get_user_model().objects.create_user("sam2", "sam@example.com", "pw-sam2-12345")
    Membership.objects.create(
        project=Project.objects.get(name="Trailer"), user=twin, role=Role.CREATOR
    )
    client.force_login(admin_user)
    html = client.post(
        settings_url(project, "members"), {"who": "sam@example.com", "role": "creator"}
    ).content.decode()
    assert "More than one person in your projects uses this email." in html


def test_site_staff_may_add_anyone(client, admin_user, project, sam):
    admin_user.is_staff = True
    admin_user.save(update_fields=["is_staff"])
    client.force_login(admin_user)
    assert (
        "Anyone with an account on this site." in client.get(settings_url(project)).content.decode()
    )
    response = client.post(settings_url(project, "members"), {"who": "sam", "role": "creator"})
    assert response.status_code == 302
    assert project.role_of(sam) == Role.CREATOR


def test_an_admin_changes_a_role_and_removes_a_member(client, admin_user, project, sam):
    membership = Membership.objects.create(project=project, user=sam, role=Role.CREATOR)
    client.force_login(admin_user)
    client.post(settings_url(project, "members", str(membership.pk), "role"), {"role": "admin"})
    assert project.role_of(sam) == Role.ADMIN
    response = client.post(settings_url(project, "members", str(membership.pk), "remove"))
    assert response.status_code == 302
    assert project.role_of(sam) is None
    assert list(AuditEvent.objects.order_by("pk").values_list("action", "detail")) == [
        ("member.role_changed", {"from": "creator", "to": "admin"}),
        ("member.removed", {"role": "admin"}),
    ]


def test_the_last_admin_can_be_neither_demoted_nor_removed(client, admin_user, project):
    membership = project.memberships.get(user=admin_user)
    client.force_login(admin_user)
    for response in (
        client.post(
            settings_url(project, "members", str(membership.pk), "role"), {"role": "creator"}
        ),
        client.post(settings_url(project, "members", str(membership.pk), "remove")),
    ):
        html = response.content.decode()
        assert response.status_code == 200
        assert f'id="member-{membership.pk}-error"' in html
        assert "casey is the project&#x27;s only admin. Make someone else an admin first." in html
    assert project.role_of(admin_user) == Role.ADMIN
    assert not AuditEvent.objects.exists()


def test_an_admin_who_steps_down_lands_on_the_project_page(client, admin_user, project, sam):
    Membership.objects.create(project=project, user=sam, role=Role.ADMIN)
    membership = project.memberships.get(user=admin_user)
    client.force_login(admin_user)
    response = client.post(
        settings_url(project, "members", str(membership.pk), "role"), {"role": "reviewer"}
    )
    assert response["Location"] == f"/projects/{project.pk}/"
    response = client.post(settings_url(project, "members", str(membership.pk), "remove"))
    assert response.status_code == 403  # a reviewer now: the settings are closed to them


def test_a_member_of_another_project_cannot_be_changed_from_this_one(
    client, admin_user, project, sam
):
    elsewhere = Project.objects.create(name="Elsewhere")
    foreign = Membership.objects.create(project=elsewhere, user=sam, role=Role.ADMIN)
    client.force_login(admin_user)
    response = client.post(settings_url(project, "members", str(foreign.pk), "remove"))
    assert response.status_code == 404
    assert Membership.objects.filter(pk=foreign.pk).exists()


def test_a_bad_role_is_explained_next_to_the_member(client, admin_user, project, sam):
    membership = Membership.objects.create(project=project, user=sam, role=Role.CREATOR)
    client.force_login(admin_user)
    html = client.post(
        settings_url(project, "members", str(membership.pk), "role"), {"role": "owner"}
    ).content.decode()
    assert "Select a valid choice. owner is not one of the available choices." in html
    assert project.role_of(sam) == Role.CREATOR


def test_an_admin_sets_and_clears_the_budget(client, admin_user, project):
    client.force_login(admin_user)
    response = client.post(settings_url(project, "budget"), {"budget": "25.50"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.budget == Decimal("25.50")
    html = client.get(settings_url(project)).content.decode()
    assert "The budget is now $25.50." in html and "$0.00</strong> of $25.50" in html

    client.post(settings_url(project, "budget"), {"budget": ""})
    project.refresh_from_db()
    assert project.budget is None
    assert list(AuditEvent.objects.order_by("pk").values_list("detail", flat=True)) == [
        {"from": None, "to": "25.50"},
        {"from": "25.50", "to": None},
    ]


def test_a_negative_budget_is_refused_next_to_the_field(client, admin_user, project):
    client.force_login(admin_user)
    html = client.post(settings_url(project, "budget"), {"budget": "-3"}).content.decode()
    assert 'id="id_budget-error"' in html
    assert "Ensure this value is greater than or equal to 0." in html
    project.refresh_from_db()
    assert project.budget is None


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_manages_members_and_the_budget_in_chromium(
    page, live_server, admin_user, project, colleague
):
    sam = colleague
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("casey")
    page.get_by_label("Password").fill("pw-casey-123")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Launch film").click()
    page.get_by_role("link", name="Settings").click()

    page.get_by_label("Username or email").fill("sam@example.com")
    page.get_by_label("Role", exact=True).select_option("reviewer")
    page.get_by_role("button", name="Add member").click()
    page.get_by_text("Added sam as reviewer.").wait_for()
    page.get_by_label("Budget (USD)").fill("12.50")
    page.get_by_role("button", name="Save budget").click()
    page.get_by_text("The budget is now $12.50.").wait_for()
    shot(page, "money-01-settings")

    page.get_by_role("button", name="Remove casey").click()
    page.get_by_text("casey is the project's only admin.").wait_for()
    page.get_by_role("link", name="Usage", exact=True).click()
    page.get_by_role("heading", name="Usage").wait_for()
    shot(page, "money-02-usage")
    assert project.role_of(sam) == Role.REVIEWER
    project.refresh_from_db()
    assert project.budget == Decimal("12.50")
