"""Work that crosses models: creating projects and clips."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from videos import frames as frame_store
from videos import ledger, permissions
from videos.frames import NewFrame
from videos.models import Clip, ClipKind, ClipStatus, Membership, Project, ProviderAccount, Role
from videos.pricing import estimate_for
from videos.providers import model_spec


@transaction.atomic
def create_project(*, name: str, user) -> Project:
    if not permissions.can_create_projects(user):
        raise permissions.NotAllowed(
            "Creating projects needs the right to spend, which staff give. Ask a staff member, "
            "or ask a project's admin to add you to their project."
        )
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
    frames: Sequence[NewFrame] = (),
    retry_of: Clip | None = None,
) -> Clip:
    # Before any row exists and long before any provider call: who may spend, then how much.
    permissions.ensure_can_spend(project=project, user=user, account=account)
    ledger.ensure_within_budget(project=project, account=account, model=model, params=params)
    clip = Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model=model,
        prompt=prompt,
        params=params,
        parent=parent,
        root_id=(parent.root_id or parent.pk) if parent is not None else None,
        retry_of=retry_of,
        estimated_cost=estimate_for(account.kind, model, params),
    )
    frame_store.store(clip, frames)
    # No task to queue: the tracker sends queued clips in order, as slots at the account free.
    return clip


RETRYABLE = frozenset({ClipStatus.FAILED, ClipStatus.EXPIRED})


class CannotRetry(Exception):
    """A retry the studio will not make, with the reason in plain words."""


def retry_clip(*, clip: Clip, user) -> Clip:
    """A new submission of a failed clip: same prompt, settings and frames, on a click."""
    if clip.status not in RETRYABLE:
        raise CannotRetry("Only a failed or expired clip can be retried.")
    if clip.kind != ClipKind.GENERATE:
        # Extensions and continuations are remade from their chain, which knows the source.
        raise CannotRetry("Retry an extension from its chain, below the clip it extends.")
    account = ProviderAccount.objects.enabled_for(clip.project).filter(pk=clip.provider_account_id)
    if not account.exists() or model_spec(clip.provider_account.kind, clip.model) is None:
        raise CannotRetry(
            "This clip's provider account or model is no longer available to the project. "
            "Use it as a template and pick another provider."
        )
    return create_clip(
        project=clip.project,
        user=user,
        account=clip.provider_account,
        model=clip.model,
        prompt=clip.prompt,
        params={k: v for k, v in clip.params.items() if k != "partial"},
        frames=[frame_store.copy_of(frame) for frame in frame_store.ordered(clip.frames.all())],
        retry_of=clip,
    )
