"""Who may spend: a site-level right that staff grant, and a project role that allows it.

Money leaves the studio only through ``services.create_clip``, which asks ``ensure_can_spend``
first, so every way of spending (generate, retry, extend, continue, takes) is covered by one
check; the views ask ``can_spend`` only to decide which buttons to show.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Exists, ExpressionWrapper

from videos.models import Project, ProviderAccount, Role

SPEND = "videos.spend"
SPENDING_ROLES = frozenset({Role.ADMIN, Role.CREATOR})


class NotAllowed(PermissionDenied):
    """A spending action this user may not take, with the reason in plain words."""


def has_spending_right(user) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(SPEND))


def spending_right_granted(user_id: int) -> ExpressionWrapper:
    """Whether the user or one of their groups was given the right, as a subquery: pages
    read it with the row they need anyway, instead of two queries through ``has_perm``.

    Two small EXISTS, one per way of being given the right, rather than one over a join of
    permissions, users and groups: PostgreSQL spent about 0.8 ms planning that join on every
    clip poll (bench/profile_pages.py --postgres --explain)."""
    app_label, codename = SPEND.split(".")
    spend = Permission.objects.filter(codename=codename, content_type__app_label=app_label).values(
        "pk"
    )
    given = get_user_model().user_permissions.through.objects.filter(
        user=user_id, permission__in=spend
    )
    through_group = Group.permissions.through.objects.filter(
        group__user=user_id, permission__in=spend
    )
    return ExpressionWrapper(Exists(given) | Exists(through_group), output_field=BooleanField())


def has_spending_right_given(user, *, granted: bool) -> bool:
    """``has_spending_right`` from ``spending_right_granted``'s answer (as ``has_perm``
    decides: active superusers have every right, inactive users none)."""
    return bool(user.is_authenticated and user.is_active and (user.is_superuser or granted))


def can_create_projects(user) -> bool:
    return has_spending_right(user)


def can_spend(
    project: Project, user, *, role: str | None = None, right: bool | None = None
) -> bool:
    """``role`` and ``right``, when the caller read them already, save their queries."""
    role = role if role is not None else project.role_of(user)
    if role not in SPENDING_ROLES:
        return False
    return right if right is not None else has_spending_right(user)


def ensure_can_spend(*, project: Project, user, account: ProviderAccount) -> None:
    role = project.role_of(user)
    if role not in SPENDING_ROLES:
        raise NotAllowed("Only the project's creators and admins can generate; reviewers cannot.")
    if not has_spending_right(user):
        raise NotAllowed(
            "Your account may not spend on providers yet. Ask a staff member to give you "
            "the right to create projects and spend."
        )
    if not ProviderAccount.objects.enabled_for(project).filter(pk=account.pk).exists():
        raise NotAllowed(f"{account.label} is not offered to {project.name}.")
