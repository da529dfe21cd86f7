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
    kind: str = ClipKind.GENERATE,
) -> Clip:
    # Before any row exists and long before any provider call: who may spend, then how much.
    permissions.ensure_can_spend(project=project, user=user, account=account)
    if kind == ClipKind.UPSCALE:
        # kie's 1080p version costs no credits of its own (only its 4K version is charged
        # extra, docs.kie.ai "Get 4K Video"): a $0 entry, so no budget can refuse it.
        estimate = ledger.ZERO
    else:
        ledger.ensure_within_budget(project=project, account=account, model=model, params=params)
        estimate = estimate_for(account.kind, model, params)
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
        kind=kind,
        estimated_cost=estimate,
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


class CannotUpscale(Exception):
    """A 1080p version the studio will not ask for, with the reason in plain words."""


def upscale_refusal(clip: Clip) -> str | None:
    """Why kie cannot make this clip's 1080p version, or None when it can."""
    from videos.providers import kie

    if clip.provider_account.kind != "kie":
        return "Only kie makes 1080p versions of its clips."
    if clip.kind == ClipKind.UPSCALE:
        return "This is already the 1080p version."
    if clip.status != ClipStatus.READY or not clip.provider_task_id:
        return "kie makes the 1080p version of a finished clip."
    if clip.params.get("aspect_ratio", "16:9") not in kie.HD_ASPECT_RATIOS:
        return "kie makes 1080p versions of 16:9 clips only."
    if clip.children.filter(kind=ClipKind.UPSCALE).exclude(status__in=RETRYABLE).exists():
        return "The 1080p version has been asked for already."
    account = ProviderAccount.objects.enabled_for(clip.project).filter(pk=clip.provider_account_id)
    if not account.exists():
        return f"The {clip.provider_account.label} account is no longer open to this project."
    return None


def request_1080p(*, source: Clip, user) -> Clip:
    """The 1080p version of a finished kie clip, as a clip of its own (its own file)."""
    refusal = upscale_refusal(source)
    if refusal:
        raise CannotUpscale(refusal)
    return create_clip(
        project=source.project,
        user=user,
        account=source.provider_account,
        model=source.model,
        prompt=source.prompt,
        params={
            "duration": source.params.get("duration"),
            "aspect_ratio": source.params.get("aspect_ratio", "16:9"),
            "resolution": "1080p",
        },
        parent=source,
        kind=ClipKind.UPSCALE,
    )
