"""Several videos from one paid task: apimart's ``sample_count`` returns up to four.

The submission is one clip (it holds the task id and the whole estimate). When the task
finishes, every further video becomes a clip of its own in the same take group, born
"Saving video" with its link, so the ordinary mirror step (and the safety net, should that
step be lost) saves it. The tracker records them in the same transaction that marks the
first video done: all of them are recorded, or none and the poll is simply repeated, so a
video that was paid for is never forgotten, and nothing is ever sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from videos.models import WORK_LEASE, Clip, ClipStatus, LedgerEntry, TakeGroup
from videos.pipeline.common import enqueue

ZERO = Decimal("0")


def record_samples(*, clip: Clip, urls: Sequence[str], expires_at: datetime | None) -> list[Clip]:
    """The further videos of ``clip``'s task as takes beside it; call once, when it is done."""
    if not urls:
        return []
    now = timezone.now()
    with transaction.atomic():
        group_id = clip.take_group_id
        if group_id is None:
            group_id = TakeGroup.objects.create(
                project_id=clip.project_id, created_by_id=clip.created_by_id
            ).pk
            Clip.objects.filter(pk=clip.pk).update(take_group_id=group_id)
            clip.take_group_id = group_id
        params = {k: v for k, v in clip.params.items() if k not in {"sample_count", "partial"}}
        made = []
        for number, url in enumerate(urls, start=2):
            sample = Clip.objects.create(
                project_id=clip.project_id,
                created_by_id=clip.created_by_id,
                provider_account_id=clip.provider_account_id,
                parent_id=clip.parent_id,
                root_id=clip.root_id,
                kind=clip.kind,
                new_from_seconds=clip.new_from_seconds,
                take_group_id=group_id,
                model=clip.model,
                prompt=clip.prompt,
                params={**params, "sample_of": clip.pk, "sample": number},
                status=ClipStatus.MIRRORING,
                progress=100,
                phase="Saving the video",
                result_url=url,
                result_expires_at=expires_at,
                # The mirror step queued below holds it; the safety net waits this long.
                tracking_lease_until=now + WORK_LEASE,
                created_at=clip.created_at,
                submitted_at=clip.submitted_at,
                provider_done_at=now,
                last_polled_at=now,
            )
            # Paid for with the first video's submission, whose entry holds the whole
            # estimate: this one's entry is settled at nothing, so the usage pages count
            # the video without counting its money twice.
            LedgerEntry.objects.create(
                clip=sample,
                project_id=clip.project_id,
                provider_account_id=clip.provider_account_id,
                user_id=clip.created_by_id,
                model=clip.model,
                estimated_cost=ZERO,
                actual_cost=ZERO,
                submitted_at=clip.submitted_at or now,
                settled_at=now,
            )
            enqueue("mirror", sample.pk)
            made.append(sample)
    return made
