"""Project membership: adding, re-roling and removing members, each recorded in the audit log.

A project always keeps at least one admin: otherwise nobody could manage it from the
studio and only a site admin could repair it.
"""

from __future__ import annotations

from django.db import transaction

from videos import audit
from videos.models import Membership, Project, Role


class LastAdmin(Exception):
    """The change would leave the project without an admin."""


def _check_other_admin(membership: Membership) -> None:
    # Locks the project's admin rows so two admins demoting each other at the same moment
    # cannot both succeed (on PostgreSQL; SQLite serialises writers anyway).
    others = (
        Membership.objects.select_for_update()
        .filter(project_id=membership.project_id, role=Role.ADMIN)
        .exclude(pk=membership.pk)
    )
    if not list(others.values_list("pk", flat=True)):
        raise LastAdmin(
            f"{membership.user.get_username()} is the project's only admin. Make someone "
            "else an admin first."
        )


@transaction.atomic
def add_member(*, project: Project, user, role: str, actor) -> Membership:
    membership = Membership.objects.create(project=project, user=user, role=role)
    audit.record(
        actor=actor,
        action=audit.Action.MEMBER_ADDED,
        project=project,
        target=user.get_username(),
        detail={"role": role},
    )
    return membership


@transaction.atomic
def change_role(*, membership: Membership, role: str, actor) -> None:
    if membership.role == role:
        return
    if membership.role == Role.ADMIN:
        _check_other_admin(membership)
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit.record(
        actor=actor,
        action=audit.Action.MEMBER_ROLE_CHANGED,
        project=membership.project,
        target=membership.user.get_username(),
        detail={"from": before, "to": role},
    )


@transaction.atomic
def remove_member(*, membership: Membership, actor) -> None:
    if membership.role == Role.ADMIN:
        _check_other_admin(membership)
    membership.delete()
    audit.record(
        actor=actor,
        action=audit.Action.MEMBER_REMOVED,
        project=membership.project,
        target=membership.user.get_username(),
        detail={"role": membership.role},
    )


@transaction.atomic
def set_budget(*, project: Project, budget, actor) -> None:
    if project.budget == budget:
        return
    before = project.budget
    project.budget = budget
    project.save(update_fields=["budget"])
    audit.record(
        actor=actor,
        action=audit.Action.BUDGET_CHANGED,
        project=project,
        target=project.name,
        detail={
            "from": None if before is None else str(before),
            "to": None if budget is None else str(budget),
        },
    )
