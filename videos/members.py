"""Project membership: adding, re-roling and removing members, each recorded in the audit log.

A project always keeps at least one admin: otherwise nobody could manage it from the
studio and only a site admin could repair it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet

from videos import audit
from videos.models import Membership, Project, Role


class LastAdmin(Exception):
    """The change would leave the project without an admin."""


class NotFound(Exception):
    """Nobody the admin may add answers to what they typed."""


def addable_users(*, actor) -> QuerySet:
    """The people ``actor`` may add to a project: anyone already in one of their projects.

    A project admin is not a directory of the site's accounts: they can neither add a
    stranger nor learn whether an email has an account. Site staff, who create accounts
    in the Django admin anyway, may add anyone.
    """
    users = get_user_model().objects.filter(is_active=True)
    if actor.is_staff:
        return users
    their_projects = Membership.objects.filter(user=actor).values("project")
    return users.filter(pk__in=Membership.objects.filter(project__in=their_projects).values("user"))


def find_addable(who: str, *, actor):
    """The one person ``actor`` may add who has this username or email.

    NotFound carries the same words whether or not the site has such an account; an
    email shared by two people the admin already works with asks for the username.
    """
    who = who.strip()
    users = addable_users(actor=actor)
    found = list(users.filter(username__iexact=who)[:1])
    if not found and "@" in who:
        found = list(users.filter(email__iexact=who)[:2])
        if len(found) > 1:
            raise NotFound(
                "More than one person in your projects uses this email. Type the username instead."
            )
    if not found:
        raise NotFound(
            "Nobody in your projects has this username or email. You can add people who "
            "already work with you on a project; a site admin can add anyone else."
        )
    return found[0]


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
