"""django-q2 entry points: thin functions that take a clip id and make one pipeline call."""

from videos import export as stitching
from videos import pipeline


def submit(clip_id: int) -> None:
    pipeline.submit_clip(clip_id=clip_id)


def track(clip_id: int) -> None:
    pipeline.track_clip(clip_id=clip_id)


def mirror(clip_id: int) -> None:
    pipeline.mirror_clip(clip_id=clip_id)


def poster(clip_id: int) -> None:
    pipeline.make_poster(clip_id=clip_id)


def resume_stalled() -> dict[str, int]:
    return pipeline.resume_stalled()


def export(export_id: int) -> None:
    stitching.run_export(export_id=export_id)
