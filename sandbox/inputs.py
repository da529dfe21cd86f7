"""What a twin was handed to start from: its first and last frames, and render effects.

Providers take a frame as a link they fetch, a multipart file part, a data URI or raw
Base64; each twin passes whatever it received here at submission, and the video rendered
later starts from that picture. Kept beside the rendered videos (``DATA_DIR/sandbox``), so
the task rows stay as the provider would hold them.

Links are fetched only from this studio itself (the request's own host, ``PUBLIC_URL``) or
from a loopback address (local S3): the twin must never become a way to make the studio's
server call arbitrary hosts.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest
from PIL import Image, UnidentifiedImageError

from sandbox import faults
from sandbox.models import SandboxTask

log = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS = 10
MAX_IMAGE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class RenderInputs:
    first_frame: Image.Image | None = None
    last_frame: Image.Image | None = None
    effects: frozenset[str] = frozenset()


def _folder() -> Path:
    return Path(settings.DATA_DIR) / "sandbox" / "inputs"


def _is_own_host(host: str, request: HttpRequest) -> bool:
    if host == "localhost":
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    own = {request.get_host().rsplit(":", 1)[0].strip("[]")}
    if settings.PUBLIC_URL:
        own.add(urlsplit(settings.PUBLIC_URL).hostname or "")
    return host in own


def _fetch(url: str, request: HttpRequest) -> bytes | None:
    host = urlsplit(url).hostname or ""
    if not _is_own_host(host, request):
        # A real provider would fetch it; the twin only reads what this studio serves.
        return None
    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            if response.status_code != 200:
                return None
            content = bytearray()
            for chunk in response.iter_bytes():
                content += chunk
                if len(content) > MAX_IMAGE_BYTES:
                    return None
            return bytes(content)
    except httpx.HTTPError as exc:
        log.info("sandbox: could not fetch the frame at %s: %s", url, exc)
        return None


def _content(value: object, request: HttpRequest) -> bytes | None:
    if isinstance(value, UploadedFile):
        value.seek(0)
        return value.read()
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if value.startswith(("http://", "https://")):
        return _fetch(value, request)
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def read_image(value: object, *, request: HttpRequest) -> Image.Image | None:
    """The picture a frame field carried (link, file part, data URI or Base64), if readable."""
    content = _content(value, request)
    if not content:
        return None
    try:
        with Image.open(io.BytesIO(content)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return None


def keep(
    task: SandboxTask,
    *,
    request: HttpRequest,
    first: object = None,
    last: object = None,
    texts: tuple[object, ...] = (),
) -> None:
    """Remember what ``task``'s video starts from (frame fields as received) and looks like."""
    first_image = first if isinstance(first, Image.Image) else read_image(first, request=request)
    last_image = last if isinstance(last, Image.Image) else read_image(last, request=request)
    effects = faults.render_effects(request, *texts)
    if first_image is None and last_image is None and not effects:
        return
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    if first_image is not None:
        first_image.save(folder / f"{task.task_id}-first.png")
    if last_image is not None:
        last_image.save(folder / f"{task.task_id}-last.png")
    (folder / f"{task.task_id}.json").write_text(json.dumps({"effects": sorted(effects)}))


def _open(path: Path) -> Image.Image | None:
    if not path.exists():
        return None
    with Image.open(path) as image:
        return image.convert("RGB")


def for_task(task: SandboxTask) -> RenderInputs:
    folder = _folder()
    notes = folder / f"{task.task_id}.json"
    if not notes.exists():
        return RenderInputs()
    effects = frozenset(json.loads(notes.read_text()).get("effects", ()))
    return RenderInputs(
        first_frame=_open(folder / f"{task.task_id}-first.png"),
        last_frame=_open(folder / f"{task.task_id}-last.png"),
        effects=effects & faults.RENDER_EFFECTS,
    )
