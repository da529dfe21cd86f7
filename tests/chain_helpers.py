"""Helpers for the chain, review, export and role tests: finished clips."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage

from sandbox.render import render_mp4
from videos import media, services
from videos.models import Clip, ClipKind, ClipStatus, ProviderAccount


def done(clip_id: int):
    def check() -> bool:
        clip = Clip.objects.get(pk=clip_id)
        return clip.is_final and (not clip.file_key or bool(clip.poster_key))

    return check


def generate(drain_queue, *, project, user, account, model: str, params: dict, prompt: str) -> Clip:
    """A clip made through the real pipeline and sandbox, waited for until it is final."""
    clip = services.create_clip(
        project=project, user=user, account=account, model=model, prompt=prompt, params=params
    )
    drain_queue(until=done(clip.pk), timeout=60)
    clip.refresh_from_db()
    return clip


def finish(drain_queue, clip: Clip) -> Clip:
    drain_queue(until=done(clip.pk), timeout=60)
    clip.refresh_from_db()
    return clip


def stored_clip(
    *,
    project,
    user,
    account: ProviderAccount,
    seconds: float,
    parent: Clip | None = None,
    kind: str = ClipKind.GENERATE,
    new_from: float = 0.0,
    start_at: float = 0.0,
    size: tuple[int, int] = (480, 270),
    model: str = "veo3.1-fast-official",
    prompt: str = "A lighthouse at dusk",
    status: str = ClipStatus.READY,
    **fields,
) -> Clip:
    """A finished clip whose video is rendered locally and stored: no provider involved."""
    width, height = size
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        render_mp4(
            path,
            seconds=seconds,
            width=width,
            height=height,
            scene=prompt,
            caption=prompt,
            start_at=start_at,
        )
        info = media.probe(str(path))
        with path.open("rb") as handle:
            key = default_storage.save(
                f"clips/{project.pk}/test-{path.stat().st_size}.mp4", File(handle)
            )
    return Clip.objects.create(
        project=project,
        created_by=user,
        provider_account=account,
        model=model,
        prompt=prompt,
        params=fields.pop(
            "params", {"duration": round(seconds), "aspect_ratio": "16:9", "resolution": "720p"}
        ),
        parent=parent,
        root_id=(parent.root_id or parent.pk) if parent is not None else None,
        kind=kind,
        new_from_seconds=new_from,
        status=status,
        file_key=key,
        duration_seconds=info.duration,
        width=info.width,
        height=info.height,
        provider_task_id=fields.pop("provider_task_id", f"task_local_{key[-20:]}"),
        **fields,
    )
