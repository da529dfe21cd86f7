"""Who may spend: a site-level right that staff grant, and a project role that allows it.

Money leaves the studio only through ``services.create_clip``, which asks ``ensure_can_spend``
first, so every way of spending (generate, retry, extend, continue, takes) is covered by one
check; the views ask ``can_spend`` only to decide which buttons to show.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from videos.models import Project, ProviderAccount, Role

SPEND = "videos.spend"
SPENDING_ROLES = frozenset({Role.ADMIN, Role.CREATOR})


class NotAllowed(PermissionDenied):
    """A spending action this user may not take, with the reason in plain words."""


def has_spending_right(user) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(SPEND))


def can_create_projects(user) -> bool:
    return has_spending_right(user)


def can_spend(project: Project, user, *, role: str | None = None) -> bool:
    role = role if role is not None else project.role_of(user)
    return role in SPENDING_ROLES and has_spending_right(user)


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
