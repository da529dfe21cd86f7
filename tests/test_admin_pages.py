"""The Django admin: every model registered and browsable; provider keys write-only, audited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from videos.models import (
    Activity,
    AuditEvent,
    ChainExport,
    Clip,
    ClipStatus,
    Comment,
    Decision,
    Frame,
    LedgerEntry,
    Membership,
    ModelPrice,
    Project,
    ProviderAccount,
    Role,
)

pytestmark = pytest.mark.django_db

KEY = "sk-admin-pages-secret-7781"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def account(db):
    return ProviderAccount.objects.create(
        all_projects=True,
        kind="kling",
        label="Kling Beijing",
        base_url="https://api-beijing.klingai.com",
        credential="AKadminpages00001234",
        secret_key="SKadmin-pages-secret-5678",
    )


@pytest.fixture
def one_of_everything(user, project, account):
    clip = Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model="kling-v1-6",
        prompt="A lighthouse in a storm",
        params={"duration": 5},
        status=ClipStatus.READY,
        provider_task_id="text2video:123",
    )
    Frame.objects.create(clip=clip, role="first", source_url="https://example.com/a.png")
    Comment.objects.create(clip=clip, author=user, body="Lovely waves", timecode=1.5)
    Decision.objects.create(clip=clip, user=user, verdict="approved")
    Activity.objects.create(project=project, actor=user, verb="generated", summary="Made a clip")
    ChainExport.objects.create(root=clip, created_by=user, segments=[clip.pk])
    ModelPrice.objects.create(kind="kling", model="kling-v1-6", per_clip=Decimal("0.10"))
    LedgerEntry.objects.create(
        clip=clip, project=project, provider_account=account, user=user, model="kling-v1-6"
    )
    AuditEvent.objects.create(actor=user, action="key.added", target="Kling Beijing")
    return clip


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_studio_model_is_in_the_admin():
    from django.apps import apps

    studio_models = set(apps.get_app_config("videos").get_models())
    assert studio_models <= set(admin.site._registry)


def test_every_admin_page_renders_and_none_shows_a_key(client, staff, one_of_everything):
    client.force_login(staff)
    assert client.get(reverse("admin:index")).status_code == 200
    for model, model_admin in admin.site._registry.items():
        changelist = client.get(admin_url(model, "changelist"))
        assert changelist.status_code == 200, model
        if model_admin.has_add_permission(changelist.wsgi_request):
            assert client.get(admin_url(model, "add")).status_code == 200, model
        instance = model.objects.first()
        if instance is not None:
            page = client.get(admin_url(model, "change", instance.pk))
            assert page.status_code == 200, model
            assert client.get(admin_url(model, "history", instance.pk)).status_code == 200
    # Searches and filters work on the busiest lists too.
    for model, query in [
        (ProviderAccount, "?q=beijing&kind__exact=kling&is_enabled__exact=1"),
        (Clip, "?q=lighthouse&status__exact=ready"),
        (LedgerEntry, "?q=kling&failed_but_charged__exact=0"),
        (AuditEvent, "?q=Beijing&action__exact=key.added"),
        (Membership, "?q=casey&role__exact=creator"),
    ]:
        response = client.get(admin_url(model, "changelist") + query)
        assert response.status_code == 200
        assert "0 results" not in response.content.decode(), model


def test_the_account_list_shows_only_the_last_four_of_each_key(client, staff, account):
    client.force_login(staff)
    html = client.get(admin_url(ProviderAccount, "changelist")).content.decode()
    assert "…1234" in html and "All projects" in html
    page = client.get(admin_url(ProviderAccount, "change", account.pk)).content.decode()
    assert "A key ending in …1234 and a secret key" in page
    assert 'name="credential"' in page and 'value="AK' not in page


def add_form(**overrides) -> dict:
    data = {
        "kind": "apimart",
        "label": "apimart main",
        "base_url": "https://api.apimart.ai",
        "credential": KEY,
        "secret_key": "",
        "is_enabled": "on",
        "all_projects": "on",
        "unit_price": "",
        "max_in_flight": "20",
        "requests_per_minute": "300",
    }
    data.update(overrides)
    return data


def test_adding_an_account_encrypts_the_key_and_records_who_added_it(client, staff):
    client.force_login(staff)
    response = client.post(admin_url(ProviderAccount, "add"), add_form())
    assert response.status_code == 302
    account = ProviderAccount.objects.get()
    assert account.credential == KEY and account.credential_last4 == "7781"
    event = AuditEvent.objects.get(action="key.added")
    assert event.actor == staff and event.target == "apimart main (apimart) …7781"
    assert KEY not in str(event.detail)


def test_a_new_account_needs_a_key_and_the_form_never_echoes_one(client, staff):
    client.force_login(staff)
    html = client.post(
        admin_url(ProviderAccount, "add"), add_form(credential="", base_url="not a url")
    ).content.decode()
    assert "A key is required for a new account." in html
    assert not ProviderAccount.objects.exists()
    html = client.post(
        admin_url(ProviderAccount, "add"), add_form(base_url="not a url")
    ).content.decode()
    assert "Enter a valid URL." in html  # the typed key is not rendered back either


def change_form(account: ProviderAccount, **overrides) -> dict:
    data = add_form(
        kind=account.kind,
        label=account.label,
        base_url=account.base_url,
        credential="",
        secret_key="",
    )
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_an_empty_key_field_keeps_the_stored_key_and_typing_one_replaces_it(client, staff, account):
    client.force_login(staff)
    url = admin_url(ProviderAccount, "change", account.pk)
    assert client.post(url, change_form(account, label="Kling BJ")).status_code == 302
    account.refresh_from_db()
    assert account.label == "Kling BJ"
    assert account.credential == "AKadminpages00001234"
    assert account.secret_key == "SKadmin-pages-secret-5678"
    assert list(AuditEvent.objects.values_list("action", "detail")) == [
        ("key.changed", {"fields": ["label"]})
    ]

    client.post(url, change_form(account, credential="AKreplacement0009876"))
    account.refresh_from_db()
    assert account.credential == "AKreplacement0009876" and account.credential_last4 == "9876"
    assert account.secret_key == "SKadmin-pages-secret-5678"
    rotated = AuditEvent.objects.get(action="key.rotated")
    assert rotated.actor == staff and rotated.detail == {"replaced": ["credential"]}
    assert rotated.target.endswith("…9876")


def test_disabling_an_account_hides_it_from_the_new_clip_form_and_is_audited(
    client, staff, user, project, account
):
    client.force_login(staff)
    response = client.post(
        admin_url(ProviderAccount, "changelist"),
        {"action": "disable_accounts", "_selected_action": [account.pk]},
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert not account.is_enabled
    assert AuditEvent.objects.get(action="key.disabled").actor == staff

    creator = Client()
    creator.force_login(user)
    html = creator.get(f"/projects/{project.pk}/clips/new/").content.decode()
    assert "Kling Beijing" not in html


def test_accounts_can_be_assigned_to_chosen_projects(client, staff, user, project, account):
    other = Project.objects.create(name="Other film", created_by=staff)
    client.force_login(staff)
    url = admin_url(ProviderAccount, "change", account.pk)
    data = change_form(account, all_projects=None)
    data["projects"] = [other.pk]
    assert client.post(url, data).status_code == 302
    assert list(ProviderAccount.objects.enabled_for(other)) == [account]
    assert list(ProviderAccount.objects.enabled_for(project)) == []
    changed = AuditEvent.objects.filter(action="key.changed").values_list("detail", flat=True)
    assert {"fields": ["projects"], "projects": ["Other film"]} in list(changed)

    creator = Client()
    creator.force_login(user)
    html = creator.get(f"/projects/{project.pk}/clips/new/").content.decode()
    assert "Kling Beijing" not in html


def test_view_only_staff_see_an_account_without_any_key_field(client, account):
    viewer = get_user_model().objects.create_user("vera", password="pw-vera-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_provideraccount"))
    client.force_login(viewer)
    html = client.get(admin_url(ProviderAccount, "change", account.pk)).content.decode()
    assert "A key ending in …1234" in html
    assert 'name="credential"' not in html and "Credential" in html


def test_the_audit_log_cannot_be_edited_in_the_admin(client, staff):
    event = AuditEvent.objects.create(actor=staff, action="key.added", target="x")
    client.force_login(staff)
    assert client.get(admin_url(AuditEvent, "add")).status_code == 403
    client.post(admin_url(AuditEvent, "delete", event.pk), {"post": "yes"})
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_site_admins_changing_members_and_budgets_in_the_admin_are_audited(
    client, staff, user, project
):
    sam = get_user_model().objects.create_user("sam", "sam@example.com", "pw-sam-12345")
    casey = project.memberships.get(user=user)
    client.force_login(staff)
    response = client.post(
        admin_url(Project, "change", project.pk),
        {
            "name": project.name,
            "budget": "30.00",
            "created_by": user.pk,
            "memberships-TOTAL_FORMS": "2",
            "memberships-INITIAL_FORMS": "1",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": casey.pk,
            "memberships-0-project": project.pk,
            "memberships-0-user": user.pk,
            "memberships-0-role": "reviewer",
            "memberships-0-created_at_0": "2026-01-01",
            "memberships-0-created_at_1": "10:00:00",
            "memberships-1-project": project.pk,
            "memberships-1-user": sam.pk,
            "memberships-1-role": "admin",
            "memberships-1-created_at_0": "2026-01-01",
            "memberships-1-created_at_1": "10:00:00",
            "created_at_0": "2026-01-01",
            "created_at_1": "10:00:00",
        },
    )
    assert response.status_code == 302
    assert project.role_of(sam) == Role.ADMIN and project.role_of(user) == Role.REVIEWER
    events = set(AuditEvent.objects.values_list("action", "target"))
    assert events == {
        ("budget.changed", "Launch film"),
        ("member.role_changed", "casey"),
        ("member.added", "sam"),
    }


def test_the_account_limits_are_edited_in_the_admin(client, staff, account):
    client.force_login(staff)
    url = admin_url(ProviderAccount, "change", account.pk)
    page = client.get(url).content.decode()
    assert "Limits" in page and 'name="max_in_flight"' in page
    form = change_form(account, max_in_flight="3", requests_per_minute="90")
    assert client.post(url, form).status_code == 302
    account.refresh_from_db()
    assert (account.max_in_flight, account.requests_per_minute) == (3, 90)
