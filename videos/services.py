"""Work that crosses models: creating projects and clips."""

from __future__ import annotations

from django.db import transaction

from videos.models import Clip, Membership, Project, ProviderAccount, Role
from videos.pipeline import enqueue


@transaction.atomic
def create_project(*, name: str, user) -> Project:
    project = Project.objects.create(name=name, created_by=user)
    Membership.objects.create(project=project, user=user, role=Role.ADMIN)
    return project


@transaction.atomic
def create_clip(
    *,
    project: Project,
    user,
    account: ProviderAccount,
    model: str,
    prompt: str,
    params: dict,
    parent: Clip | None = None,
) -> Clip:
    clip = Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model=model,
        prompt=prompt,
        params=params,
        parent=parent,
    )
    # Queued only after commit: the worker must find the row when it looks.
    enqueue("submit", clip.pk)
    return clip
