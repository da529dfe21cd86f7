"""Project settings (members, budget), usage pages and the audit page.

A project's settings and usage are for its admins: other members get a 403, non-members a
404 (a project's existence is private). The site-wide usage and audit pages are for staff.
Provider accounts are managed in the Django admin (see videos/admin.py for why).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from videos import audit, ledger, members
from videos.models import AuditEvent, LedgerEntry, Membership, Project, Role

# --- forms -----------------------------------------------------------------------------------


class AddMemberForm(forms.Form):
    who = forms.CharField(
        label="Username or email",
        max_length=254,
        help_text="Someone already in one of your projects.",
        widget=forms.TextInput(attrs={"placeholder": "sam or sam@example.com"}),
    )
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.CREATOR)

    def __init__(self, *args, project: Project, actor, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        self.actor = actor
        if actor.is_staff:
            self.fields["who"].help_text = "Anyone with an account on this site."

    def clean_who(self):
        try:
            user = members.find_addable(self.cleaned_data["who"], actor=self.actor)
        except members.NotFound as exc:
            raise forms.ValidationError(str(exc)) from None
        role = self.project.role_of(user)
        if role is not None:
            raise forms.ValidationError(
                f"{user.get_username()} is already a member ({Role(role).label.lower()})."
            )
        return user


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)


class BudgetForm(forms.Form):
    budget = forms.DecimalField(
        label="Budget (USD)",
        required=False,
        min_value=Decimal("0"),
        max_digits=12,
        decimal_places=2,
        help_text="Leave empty for no limit. Spent and pending clips count against it.",
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "placeholder": "No limit"}),
    )


PERIODS = {"7": 7, "30": 30, "90": 90, "all": None}


class UsagePeriodForm(forms.Form):
    days = forms.ChoiceField(
        label="Period",
        required=False,
        initial="30",
        choices=[
            ("7", "Last 7 days"),
            ("30", "Last 30 days"),
            ("90", "Last 90 days"),
            ("all", "All time"),
        ],
    )

    def since(self):
        """The start of the chosen period (30 days when nothing valid was chosen)."""
        days = PERIODS[self.cleaned_data.get("days") or "30"] if self.is_valid() else 30
        return None if days is None else timezone.now() - timedelta(days=days)


# --- access ----------------------------------------------------------------------------------


def _admin_project(request: HttpRequest, pk: int) -> Project:
    project = get_object_or_404(Project.objects.for_user(request.user), pk=pk)
    if project.role_of(request.user) != Role.ADMIN:
        raise PermissionDenied("Only the project's admins can open its settings and usage.")
    return project


def _require_staff(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("Only site admins can see this page.")


# --- settings --------------------------------------------------------------------------------


def _render_settings(
    request: HttpRequest,
    project: Project,
    *,
    add_form: AddMemberForm | None = None,
    budget_form: BudgetForm | None = None,
    member_errors: dict[int, str] | None = None,
) -> HttpResponse:
    memberships = project.memberships.select_related("user").order_by("user__username", "pk")
    return render(
        request,
        "videos/project_settings.html",
        {
            "project": project,
            "memberships": memberships,
            "roles": Role.choices,
            "add_form": add_form or AddMemberForm(project=project, actor=request.user),
            "budget_form": budget_form or BudgetForm(initial={"budget": project.budget}),
            "member_errors": member_errors or {},
            "status": ledger.budget_status(project),
        },
    )


def _after_change(request: HttpRequest, project: Project, message: str) -> HttpResponse:
    messages.success(request, message)
    # Someone who just removed or demoted themselves can no longer open the settings.
    if project.role_of(request.user) == Role.ADMIN:
        return redirect("project-settings", project.pk)
    if project.role_of(request.user) is not None:
        return redirect(project)
    return redirect("projects")


@login_required
@require_GET
def project_settings(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_settings(request, _admin_project(request, pk))


@login_required
@require_POST
def member_add(request: HttpRequest, pk: int) -> HttpResponse:
    project = _admin_project(request, pk)
    form = AddMemberForm(request.POST, project=project, actor=request.user)
    if not form.is_valid():
        return _render_settings(request, project, add_form=form)
    user = form.cleaned_data["who"]
    role = form.cleaned_data["role"]
    members.add_member(project=project, user=user, role=role, actor=request.user)
    label = Role(role).label.lower()
    return _after_change(request, project, f"Added {user.get_username()} as {label}.")


def _membership(project: Project, membership_id: int) -> Membership:
    return get_object_or_404(project.memberships.select_related("user"), pk=membership_id)


@login_required
@require_POST
def member_role(request: HttpRequest, pk: int, membership_id: int) -> HttpResponse:
    project = _admin_project(request, pk)
    membership = _membership(project, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _render_settings(
            request, project, member_errors={membership.pk: form.errors["role"][0]}
        )
    try:
        members.change_role(
            membership=membership, role=form.cleaned_data["role"], actor=request.user
        )
    except members.LastAdmin as exc:
        return _render_settings(request, project, member_errors={membership.pk: str(exc)})
    name = membership.user.get_username()
    label = Role(membership.role).label.lower()
    return _after_change(request, project, f"{name} is now {label}.")


@login_required
@require_POST
def member_remove(request: HttpRequest, pk: int, membership_id: int) -> HttpResponse:
    project = _admin_project(request, pk)
    membership = _membership(project, membership_id)
    try:
        members.remove_member(membership=membership, actor=request.user)
    except members.LastAdmin as exc:
        return _render_settings(request, project, member_errors={membership.pk: str(exc)})
    return _after_change(
        request, project, f"Removed {membership.user.get_username()} from {project.name}."
    )


@login_required
@require_POST
def budget(request: HttpRequest, pk: int) -> HttpResponse:
    project = _admin_project(request, pk)
    form = BudgetForm(request.POST)
    if not form.is_valid():
        return _render_settings(request, project, budget_form=form)
    members.set_budget(project=project, budget=form.cleaned_data["budget"], actor=request.user)
    if project.budget is None:
        return _after_change(request, project, "The budget is removed: no limit.")
    return _after_change(request, project, f"The budget is now ${project.budget:,.2f}.")


# --- usage -----------------------------------------------------------------------------------


@login_required
@require_GET
def project_usage(request: HttpRequest, pk: int) -> HttpResponse:
    project = _admin_project(request, pk)
    period = UsagePeriodForm(request.GET or None)
    usage = ledger.usage(LedgerEntry.objects.filter(project=project), since=period.since())
    return render(
        request,
        "videos/usage.html",
        {
            "project": project,
            "period": period,
            "usage": usage,
            "budgets": [(project, ledger.budget_status(project))],
            "action": reverse("project-usage", args=[project.pk]),
        },
    )


@login_required
@require_GET
def site_usage(request: HttpRequest) -> HttpResponse:
    _require_staff(request)
    period = UsagePeriodForm(request.GET or None)
    usage = ledger.usage(LedgerEntry.objects.all(), since=period.since())
    projects = list(Project.objects.order_by("name", "pk"))
    statuses = ledger.budget_statuses(projects)
    return render(
        request,
        "videos/usage.html",
        {
            "project": None,
            "period": period,
            "usage": usage,
            "budgets": [(project, statuses[project.pk]) for project in projects],
            "action": reverse("site-usage"),
        },
    )


# --- audit -----------------------------------------------------------------------------------

AUDIT_ROWS = 200


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    _require_staff(request)
    events = list(
        AuditEvent.objects.select_related("actor", "project").order_by("-created_at", "-pk")[
            :AUDIT_ROWS
        ]
    )
    for event in events:
        event.label = audit.LABELS.get(event.action, event.action)  # type: ignore[attr-defined]
    spending = LedgerEntry.objects.select_related(
        "user", "project", "provider_account", "clip"
    ).order_by("-submitted_at", "-pk")[:AUDIT_ROWS]
    return render(
        request,
        "videos/audit.html",
        {"events": events, "spending": spending, "rows": AUDIT_ROWS},
    )
