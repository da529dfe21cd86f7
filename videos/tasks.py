"""django-q2 entry points: thin functions that take a clip id and make one pipeline call."""

from videos import export as stitching
from videos import pipeline, seams


# Provider calls are the tracker's (manage.py tracker), not the queue's. These two remain
# only so that tasks queued by an older version still run after an upgrade.
def submit(clip_id: int) -> None:
    pipeline.submit_clip(clip_id=clip_id)


def track(clip_id: int) -> None:
    pipeline.poll_now(clip_id=clip_id)


def mirror(clip_id: int) -> None:
    pipeline.mirror_clip(clip_id=clip_id)


def poster(clip_id: int) -> None:
    pipeline.make_poster(clip_id=clip_id)


def resume_stalled() -> dict[str, int]:
    return pipeline.resume_stalled()


def export(export_id: int) -> None:
    stitching.run_export(export_id=export_id)


def score_seams(clip_id: int) -> None:
    seams.score_clip(clip_id=clip_id)
