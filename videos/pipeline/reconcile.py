"""Reconciliation: submissions whose answer was lost, and money that does not match videos.

A clip whose submission may have reached the provider but whose answer never came back is
"Outcome unknown". Where the provider can be asked (Kling keeps the studio's own
``external_task_id`` for every task and lists them), the task is looked up and adopted; a
person can also enter the task id from the provider's dashboard, or say it was never sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import IntegrityError
from django.db.models import Q

from videos import audit, ledger
from videos.models import Clip, ClipKind, ClipStatus, LedgerEntry
from videos.pipeline.common import client_for_account
from videos.pipeline.submit import external_task_id, record_task_id
from videos.providers import ProviderError
from videos.redact import redact

log = logging.getLogger(__name__)


class CannotAdopt(Exception):
    """A task id a person entered that the studio will not take, with the reason."""


def can_look_up(clip: Clip) -> bool:
    return clip.provider_account.kind == "kling"


def look_up(*, clip_id: int) -> bool:
    """Ask the provider for an unknown submission by the studio's own id; adopt it if found."""
    clip = Clip.objects.select_related("provider_account").get(pk=clip_id)
    if clip.status != ClipStatus.UNKNOWN or not can_look_up(clip):
        return False
    client = client_for_account(clip.provider_account)
    families = (
        ("video-extend",)
        if clip.kind == ClipKind.EXTEND
        else ("image2video", "text2video")
        if clip.frames.exists()
        else ("text2video",)
    )
    try:
        task_id = client.find_by_external_id(external_task_id(clip), families=families)
    except ProviderError as exc:
        log.warning(
            "clip %s: looking up the lost submission failed: %s",
            clip.pk,
            redact(str(exc), clip.provider_account.secrets()),
        )
        return False
    if task_id is None:
        return False
    log.info("clip %s: the lost submission was found as %s", clip.pk, task_id)
    return record_task_id(clip, task_id)


def adopt(*, clip: Clip, task_id: str, user) -> None:
    """A person entered the provider's task id for an unknown submission: check it, track it."""
    task_id = task_id.strip()
    if clip.status != ClipStatus.UNKNOWN:
        raise CannotAdopt("Only a clip whose outcome is unknown can be given a task id.")
    if clip.provider_account.kind == "kling" and ":" not in task_id:
        # Kling task ids are kept with their endpoint family, which the kind implies.
        family = (
            "video-extend"
            if clip.kind == ClipKind.EXTEND
            else ("image2video" if clip.frames.exists() else "text2video")
        )
        task_id = f"{family}:{task_id}"
    if Clip.objects.filter(
        provider_account=clip.provider_account, provider_task_id=task_id
    ).exists():
        raise CannotAdopt("Another clip already tracks this task.")
    try:
        client_for_account(clip.provider_account).status(task_id)
    except ProviderError as exc:
        raise CannotAdopt(
            f"The provider does not confirm task {task_id[:80]}: {exc.message}"
        ) from None
    try:
        record_task_id(clip, task_id)
    except IntegrityError:
        raise CannotAdopt("Another clip already tracks this task.") from None
    audit.record(
        actor=user,
        action="task.adopted",
        project=clip.project,
        target=f"clip {clip.pk}",
        detail={"task_id": task_id[:200]},
    )


def mark_not_sent(*, clip: Clip, user) -> bool:
    """A person checked the provider: the unknown submission never arrived. Settles at 0."""
    if not clip.mark_not_sent(
        message=f"Marked as never received by the provider (checked by {user.get_username()})."
    ):
        return False
    ledger.settle(clip=clip, reported_cost=None, failed=True)
    audit.record(actor=user, action="task.not_sent", project=clip.project, target=f"clip {clip.pk}")
    return True


# --- money that does not match videos -----------------------------------------------------------


@dataclass
class Mismatches:
    # Paid or possibly paid, but no video: unknown outcomes, and settled charges for clips
    # that have no video.
    paid_no_video: list[LedgerEntry]
    # A video, but its ledger entry is missing or not settled.
    video_unsettled: list[Clip]

    @property
    def count(self) -> int:
        return len(self.paid_no_video) + len(self.video_unsettled)


def mismatches(*, projects=None, limit: int = 200) -> Mismatches:
    entries = LedgerEntry.objects.all()
    clips = Clip.objects.all()
    if projects is not None:
        entries = entries.filter(project__in=projects)
        clips = clips.filter(project__in=projects)
    with_video = [ClipStatus.READY, ClipStatus.PARTIAL]
    paid_no_video = list(
        entries.filter(
            Q(clip__status=ClipStatus.UNKNOWN)
            | Q(settled_at__isnull=False, actual_cost__gt=0, clip__file_key="")
        )
        .select_related("clip", "project", "provider_account")
        .order_by("-submitted_at", "-pk")[:limit]
    )
    video_unsettled = list(
        clips.filter(status__in=with_video)
        .filter(Q(ledger_entry__isnull=True) | Q(ledger_entry__settled_at__isnull=True))
        .select_related("project", "provider_account")
        .order_by("-finished_at", "-pk")[:limit]
    )
    return Mismatches(paid_no_video=paid_no_video, video_unsettled=video_unsettled)
