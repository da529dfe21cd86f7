"""The safety net: find clips whose next step was lost and carry on."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from videos.models import Clip, ClipStatus
from videos.pipeline.common import enqueue
from videos.pipeline.submit import STUCK_SUBMITTING


def resume_stalled() -> dict[str, int]:
    """Find clips whose next step was lost (a killed worker, a lost task) and queue it again."""
    now = timezone.now()
    counts = {"submit": 0, "track": 0, "mirror": 0, "poster": 0, "unknown": 0}
    for clip in Clip.objects.filter(
        status=ClipStatus.QUEUED, created_at__lt=now - timedelta(seconds=30)
    ).only("pk"):
        enqueue("submit", clip.pk)
        counts["submit"] += 1
    for clip in Clip.objects.filter(
        status=ClipStatus.SUBMITTING, created_at__lt=now - STUCK_SUBMITTING
    ):
        # The worker died between calling the provider and saving its answer. The task may
        # exist and be paid for; sending again could pay twice, so a person decides.
        clip.mark_submit_failed(
            code="submit_unknown",
            message=(
                "The studio lost track of this submission before the provider answered. It "
                "was not sent again, so you are not charged twice; check the provider's "
                "dashboard before retrying."
            ),
        )
        counts["unknown"] += 1
    stale = now - timedelta(seconds=30)
    for clip in (
        Clip.objects.filter(status=ClipStatus.RUNNING)
        .exclude(tracking_lease_until__gt=now)
        .exclude(last_polled_at__gt=stale)
        .only("pk")
    ):
        enqueue("track", clip.pk)
        counts["track"] += 1
    for clip in Clip.objects.filter(
        status=ClipStatus.MIRRORING, provider_done_at__lt=now - timedelta(minutes=2)
    ).only("pk"):
        enqueue("mirror", clip.pk)
        counts["mirror"] += 1
    for clip in Clip.objects.filter(
        status__in=[ClipStatus.READY, ClipStatus.PARTIAL],
        poster_key="",
        finished_at__lt=now - timedelta(minutes=2),
    ).only("pk"):
        enqueue("poster", clip.pk)
        counts["poster"] += 1
    return counts
