"""Serving sandbox result videos: rendered on first download, then kept on disk."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpRequest

from sandbox import inputs
from sandbox.models import SandboxTask
from sandbox.render import render_mp4


def video_path(task: SandboxTask, *, sample: int = 1) -> Path:
    suffix = f"-{sample}" if sample > 1 else ""
    return Path(settings.DATA_DIR) / "sandbox" / f"{task.task_id}{suffix}.mp4"


def ensure_video(task: SandboxTask, *, label: str, sample: int = 1) -> Path:
    """The task's video; a task that asked for several samples draws each one differently."""
    path = video_path(task, sample=sample)
    if not path.exists():
        given = inputs.for_task(task)
        render_mp4(
            path,
            seconds=task.seconds,
            width=task.width,
            height=task.height,
            scene=((task.source.prompt if task.source else task.prompt) or task.task_id)
            + (f" · sample {sample}" if sample > 1 else ""),
            caption=task.prompt,
            label=label,
            start_at=task.start_at,
            first_frame=given.first_frame,
            last_frame=given.last_frame,
            effects=given.effects,
            sound=has_sound(task),
        )
    return path


def has_sound(task: SandboxTask) -> bool:
    """Whether the provider's model makes sound for this task: kie's Veo always does
    ("音频轨道": background audio by default); apimart when asked (generate_audio, carried
    by a remix from its source); the Kling V1 models and the NewAPI twin make none."""
    if task.provider == "kie":
        return True
    if task.provider == "apimart":
        asked = task.source.request if task.source else task.request
        return asked.get("generate_audio") is True
    return False


def video_response(
    request: HttpRequest, task: SandboxTask, *, label: str, sample: int = 1
) -> FileResponse:
    path = ensure_video(task, label=label, sample=sample)
    return FileResponse(path.open("rb"), content_type="video/mp4", filename=path.name)
