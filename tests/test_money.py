"""Money: the ledger of paid submissions, budgets refused before any provider call, usage pages."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from django_q.brokers import get_broker

from sandbox.models import SandboxTask
from videos import ledger, pipeline
from videos.models import (
    AuditEvent,
    Clip,
    ClipStatus,
    LedgerEntry,
    Membership,
    ModelPrice,
    Project,
    ProviderAccount,
    Role,
)
from videos.providers import State, TaskState

FORM = {
    "model": "veo3.1-fast-official",
    "prompt": "Harbour lights at night",
    "duration": "8",
    "aspect_ratio": "16:9",
    "resolution": "720p",
}


def price_apimart(per_clip: str = "0.10", per_second: str = "0.05") -> None:
    # 0.10 + 8 s x 0.05 = 0.50 for the form's clip.
    ModelPrice.objects.create(
        kind="apimart",
        model="veo3.1-fast-official",
        per_clip=Decimal(per_clip),
        per_second=Decimal(per_second),
    )


def make_clip(project, account, user, **fields) -> Clip:
    return Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model=fields.pop("model", "veo3.1-fast-official"),
        prompt="A kite",
        params={"duration": 8},
        **fields,
    )


def spend(project, account, user, *, estimated: str, actual: str | None, **fields) -> LedgerEntry:
    clip = make_clip(project, account, user, status=fields.pop("status", ClipStatus.READY))
    return LedgerEntry.objects.create(
        clip=clip,
        project=project,
        provider_account=account,
        user=user,
        model=clip.model,
        estimated_cost=Decimal(estimated),
        actual_cost=None if actual is None else Decimal(actual),
        settled_at=None if actual is None else timezone.now(),
        **fields,
    )


@pytest.fixture
def admin_user(user, project):
    Membership.objects.filter(project=project, user=user).update(role=Role.ADMIN)
    return user


@pytest.fixture
def offline_account(db):
    # Never reached: a request here would fail loudly (nothing listens on port 9).
    return ProviderAccount.objects.create(
        all_projects=True,
        kind="apimart",
        label="apimart offline",
        base_url="http://127.0.0.1:9/never",
        credential="sk-money-offline-0001",
    )


# --- the ledger ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_paid_submission_is_recorded_and_settled_at_the_estimate_when_no_cost_is_reported(
    client, user, project, sandbox_apimart, drain_queue
):
    price_apimart()
    client.force_login(user)
    response = client.post(
        f"/projects/{project.pk}/clips/new/", {"provider_account": sandbox_apimart.pk, **FORM}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    clip = Clip.objects.get()
    assert clip.estimated_cost == Decimal("0.5000")
    drain_queue(until=lambda: Clip.objects.get().is_final, timeout=60)

    entry = LedgerEntry.objects.get(clip=clip)
    assert entry.project == project and entry.user == user
    assert entry.provider_account == sandbox_apimart and entry.model == "veo3.1-fast-official"
    assert entry.estimated_cost == Decimal("0.5000")
    # apimart reports no cost: the estimate stands in, and says so.
    assert entry.actual_cost == Decimal("0.5000") and entry.actual_is_estimate
    assert entry.settled_at is not None and not entry.failed_but_charged
    assert SandboxTask.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_kling_units_are_converted_to_dollars_with_the_accounts_unit_price(
    client, user, project, live_server, drain_queue
):
    account = ProviderAccount.objects.create(
        all_projects=True,
        kind="kling",
        label="Kling (sandbox)",
        base_url=f"{live_server.url}/sandbox/kling",
        credential="AKmoneyunits0123456",
        secret_key="sandbox-secret-AKmoneyunits0123456",
        unit_price=Decimal("0.14"),
    )
    client.force_login(user)
    response = client.post(
        f"/projects/{project.pk}/clips/new/",
        {
            "provider_account": account.pk,
            "model": "kling-v1-6",
            "prompt": "A paper boat on a puddle",
            "duration": "5",
            "aspect_ratio": "1:1",
            "resolution": "std",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    clip = Clip.objects.get()
    drain_queue(until=lambda: Clip.objects.get().is_final, timeout=60)
    clip.refresh_from_db()
    entry = LedgerEntry.objects.get(clip=clip)
    assert clip.cost and clip.cost > 0  # Kling's final_unit_deduction, in units
    assert entry.actual_cost == (clip.cost * Decimal("0.14")).quantize(Decimal("0.0001"))
    assert not entry.actual_is_estimate and not entry.failed_but_charged


@pytest.mark.django_db
def test_a_failed_task_with_a_reported_cost_is_flagged_failed_but_charged(
    user, project, offline_account
):
    clip = make_clip(project, offline_account, user, status=ClipStatus.RUNNING, estimated_cost=2)
    ledger.record_submission(clip=clip)
    pipeline.apply_state(clip, TaskState(State.FAILED, error_code="failed", cost=Decimal("1.25")))
    entry = LedgerEntry.objects.get(clip=clip)
    assert entry.failed_but_charged and entry.actual_cost == Decimal("1.25")
    assert not entry.actual_is_estimate


@pytest.mark.django_db
def test_a_failed_task_without_a_cost_settles_at_nothing_and_only_once(
    user, project, offline_account
):
    clip = make_clip(project, offline_account, user, status=ClipStatus.RUNNING, estimated_cost=2)
    ledger.record_submission(clip=clip)
    pipeline.apply_state(clip, TaskState(State.FAILED, error_code="failed"))
    entry = LedgerEntry.objects.get(clip=clip)
    assert entry.actual_cost == 0 and entry.actual_is_estimate and not entry.failed_but_charged
    # A second report (a re-delivered task) changes nothing.
    assert not ledger.settle(clip=clip, reported_cost=Decimal("9"), failed=True)
    assert LedgerEntry.objects.get(clip=clip).actual_cost == 0
    # Recording the submission twice keeps one entry.
    ledger.record_submission(clip=clip)
    assert LedgerEntry.objects.filter(clip=clip).count() == 1


# --- budgets -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_clip_over_budget_is_refused_before_anything_reaches_the_provider(
    client, user, project, sandbox_apimart, drain_queue
):
    price_apimart()
    project.budget = Decimal("1.00")
    project.save()
    spend(project, sandbox_apimart, user, estimated="0.40", actual="0.40")
    # Created, not yet sent: its estimate is already promised.
    make_clip(project, sandbox_apimart, user, status=ClipStatus.QUEUED, estimated_cost="0.30")
    client.force_login(user)

    response = client.post(
        f"/projects/{project.pk}/clips/new/", {"provider_account": sandbox_apimart.pk, **FORM}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="form-error" role="alert"' in html
    assert (
        "This clip would cost about $0.50, but Launch film has $0.30 left of its $1.00 "
        "budget ($0.70 spent or pending). Nothing was sent."
    ) in html
    assert Clip.objects.count() == 2  # the two made above, no new one
    assert get_broker().queue_size() == 0  # nothing queued for a worker to send
    assert SandboxTask.objects.count() == 0  # and nothing reached the provider


@pytest.mark.django_db
def test_a_project_with_a_budget_refuses_unpriced_clips_it_cannot_count(
    client, user, project, offline_account
):
    project.budget = Decimal("1.00")
    project.save()
    spend(project, offline_account, user, estimated="0.50", actual="1.20")
    client.force_login(user)
    html = client.post(
        f"/projects/{project.pk}/clips/new/", {"provider_account": offline_account.pk, **FORM}
    ).content.decode()
    assert "has no price in the price table" in html
    assert "Nothing was sent." in html
    assert Clip.objects.count() == 1


@pytest.mark.django_db
def test_a_clip_within_the_budget_goes_through(client, user, project, offline_account):
    price_apimart()
    project.budget = Decimal("1.00")
    project.save()
    spend(project, offline_account, user, estimated="0.50", actual="0.50")
    client.force_login(user)
    response = client.post(
        f"/projects/{project.pk}/clips/new/", {"provider_account": offline_account.pk, **FORM}
    )
    assert response.status_code == 302
    assert Clip.objects.count() == 2
    status = ledger.budget_status(project)
    assert (status.spent, status.pending, status.level) == (Decimal("0.5"), Decimal("0.5"), "near")


@pytest.mark.django_db
def test_budget_levels_for_the_bar(user, project, offline_account):
    assert ledger.budget_status(project).level == "none"
    project.budget = Decimal("10")
    spend(project, offline_account, user, estimated="1", actual="2")
    assert (ledger.budget_status(project).percent, ledger.budget_status(project).level) == (
        20,
        "ok",
    )
    spend(project, offline_account, user, estimated="7", actual=None)
    assert (ledger.budget_status(project).percent, ledger.budget_status(project).level) == (
        90,
        "near",
    )
    spend(project, offline_account, user, estimated="2", actual=None)
    assert (ledger.budget_status(project).percent, ledger.budget_status(project).level) == (
        100,
        "over",
    )


# --- usage pages ---------------------------------------------------------------------------


@pytest.fixture
def spending(user, project, offline_account):
    """Two accounts, two users, two days, one failed task that was charged, one unpriced."""
    other_account = ProviderAccount.objects.create(
        all_projects=True,
        kind="kie",
        label="kie main",
        base_url="http://127.0.0.1:9/",
        credential="sk-kie-usage-01",
    )
    sam = get_user_model().objects.create_user("sam", "sam@example.com", "pw-sam-12345")
    Membership.objects.create(project=project, user=sam, role=Role.CREATOR)
    yesterday = timezone.now() - timedelta(days=1)
    spend(project, offline_account, user, estimated="0.50", actual="0.50", submitted_at=yesterday)
    spend(project, offline_account, sam, estimated="0.50", actual="0.75")
    spend(project, other_account, sam, estimated="0.40", actual=None)
    failed = spend(
        project,
        other_account,
        user,
        estimated="0.40",
        actual="0.30",
        failed_but_charged=True,
        status=ClipStatus.FAILED,
    )
    project.budget = Decimal("4.00")
    project.save()
    return failed


@pytest.mark.django_db
def test_the_usage_page_totals_by_day_account_and_user_and_lists_failed_but_charged(
    client, admin_user, project, spending
):
    client.force_login(admin_user)
    html = client.get(f"/projects/{project.pk}/usage/").content.decode()
    # Total: 0.50 + 0.75 + 0.40 pending + 0.30 failed = 1.95, of which 0.40 pending.
    assert "$1.95" in html and "$1.55" in html and "$0.40" in html
    assert "4 paid submissions" in html
    assert "apimart offline" in html and "kie main" in html
    assert ">sam<" in html and ">casey<" in html
    assert html.count('<td class="num">') >= 12  # day, account, user and model rows
    failed_section = html.split('id="failed-but-charged"')[1]
    assert f"Clip {spending.clip_id}" in failed_section and "$0.30" in failed_section
    assert "$1.95</strong> of $4.00" in html  # the budget bar
    # Every clip above was made without a price in the table.
    assert "4 submissions had no price set" in html


@pytest.mark.django_db
def test_the_usage_period_comes_from_a_form_and_a_bad_value_is_explained(
    client, admin_user, project, spending
):
    client.force_login(admin_user)
    week = client.get(f"/projects/{project.pk}/usage/?days=7").content.decode()
    assert "$1.95" in week
    html = client.get(f"/projects/{project.pk}/usage/?days=forever").content.decode()
    assert 'id="id_days-error"' in html and "Showing the last 30 days." in html


@pytest.mark.django_db
def test_only_project_admins_see_project_usage(client, user, project, spending):
    client.force_login(user)  # a creator
    assert client.get(f"/projects/{project.pk}/usage/").status_code == 403
    stranger = get_user_model().objects.create_user("nina", password="pw-nina-123")
    other = Client()
    other.force_login(stranger)
    assert other.get(f"/projects/{project.pk}/usage/").status_code == 404


@pytest.mark.django_db
def test_staff_see_usage_across_projects_with_each_projects_budget(
    client, user, project, spending, offline_account
):
    second = Project.objects.create(name="Second film", budget=Decimal("1.00"))
    spend(second, offline_account, user, estimated="0.90", actual="0.90")
    staff = get_user_model().objects.create_user("root", password="pw-root-123", is_staff=True)
    client.force_login(staff)
    html = client.get("/usage/?days=all").content.decode()
    assert "Usage across all projects" in html
    assert "$2.85" in html  # 1.95 + 0.90
    assert "Launch film" in html and "Second film" in html
    assert "budget-near" in html and "90% used" in html

    client.force_login(user)
    assert client.get("/usage/").status_code == 403


@pytest.mark.django_db
def test_the_audit_page_lists_key_changes_and_who_spent_what(client, user, project, spending):
    AuditEvent.objects.create(actor=user, action="key.disabled", target="kie main (kie) …e-01")
    staff = get_user_model().objects.create_user("root", password="pw-root-123", is_staff=True)
    client.force_login(staff)
    html = client.get("/audit/").content.decode()
    assert "disabled a provider account: <strong>kie main (kie) …e-01</strong>" in html
    assert "Who spent what" in html and "failed, charged" in html
    assert html.count("apimart offline") == 2

    client.force_login(user)
    assert client.get("/audit/").status_code == 403


@pytest.mark.django_db
def test_a_retry_over_budget_is_refused_with_a_message(client, user, project, offline_account):
    price_apimart()
    project.budget = Decimal("0.60")
    project.save()
    failed = make_clip(project, offline_account, user, status=ClipStatus.FAILED)
    spend(project, offline_account, user, estimated="0.50", actual="0.50")
    client.force_login(user)
    response = client.post(f"/clips/{failed.pk}/retry/", follow=True)
    assert response.redirect_chain[-1][0] == f"/clips/{failed.pk}/"
    assert "This clip would cost about $0.50, but Launch film has $0.10 left" in (
        response.content.decode()
    )
    assert Clip.objects.count() == 2
