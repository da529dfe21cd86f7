"""The safety net: carry on where a killed process stopped, without ever doing work twice.

It runs inside every tracker (every 5 s) and from django-q2's schedule (every minute), so it
neither starves behind queued work nor needs the tracker to be up. Every step it takes is
guarded by a lease in the database, so two runs side by side change nothing twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from videos.models import WORK_LEASE, Clip, ClipStatus
from videos.pipeline.common import enqueue
from videos.pipeline.submit import lost

log = logging.getLogger(__name__)

# A queue step not done after this long is taken to be lost with its worker.
STEP_GRACE = timedelta(minutes=2)
# Kling's task lists are searched for a lost submission for this long.
LOOK_UP_FOR = timedelta(days=2)


def resume_stalled(*, look_up_unknown: bool = True) -> dict[str, int]:
    """One pass. ``look_up_unknown`` also searches providers' lists for lost answers (costs
    list requests, so trackers do it once a minute, not at every pass)."""
    now = timezone.now()
    counts = {"unknown": 0, "found": 0, "mirror": 0, "poster": 0}
    lapsed = Q(tracking_lease_until__isnull=True) | Q(tracking_lease_until__lt=now)
    # A submitter that died mid-call stops renewing its lease. Its request may have reached
    # the provider, so it is never sent again: the outcome is unknown until found.
    for clip in Clip.objects.select_related("provider_account").filter(
        status=ClipStatus.SUBMITTING, submit_lease_until__lt=now
    ):
        counts["unknown"] += 1
        if lost(clip, provider_message="The studio process sending it stopped."):
            counts["found"] += 1
    # Answers lost earlier may have appeared in the provider's lists since.
    from videos.pipeline.reconcile import can_look_up, look_up

    unknown = Clip.objects.select_related("provider_account").filter(
        status=ClipStatus.UNKNOWN, submit_claimed_at__gte=now - LOOK_UP_FOR
    )
    for clip in unknown if look_up_unknown else ():
        if can_look_up(clip) and look_up(clip_id=clip.pk):
            counts["found"] += 1
    # Queue steps whose task was lost: queued again once, under a lease that outlasts the
    # queue's own redelivery, so the schedule and the trackers never queue one twice.
    for step, status_filter, since in (
        ("mirror", Q(status=ClipStatus.MIRRORING), "provider_done_at__lt"),
        (
            "poster",
            Q(status__in=[ClipStatus.READY, ClipStatus.PARTIAL], poster_key="") & ~Q(file_key=""),
            "finished_at__lt",
        ),
    ):
        ids = list(
            Clip.objects.filter(status_filter, lapsed, **{since: now - STEP_GRACE}).values_list(
                "pk", flat=True
            )[:500]
        )
        for clip_id in ids:
            claimed = (
                Clip.objects.filter(pk=clip_id)
                .filter(lapsed)
                .update(tracking_lease_until=now + WORK_LEASE)
            )
            if claimed:
                enqueue(step, clip_id)
                counts[step] += 1
    if any(counts.values()):
        log.info("safety net: %s", counts)
    return counts
