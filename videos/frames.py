"""Frame images: checked by what they contain, stored with their clip, handed to providers.

An image is trusted only after Pillow has read it whole: the name and the browser's
content type are the sender's claims, not facts. Checks run before anything is saved,
so a refused image leaves no clip and no file behind.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import httpx
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import URLValidator
from django.urls import reverse
from PIL import Image, UnidentifiedImageError

from videos import netguard
from videos.models import Clip, Frame
from videos.providers.base import FrameInput

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_LINK_LENGTH = 2000
# Pillow's format name -> (content type, file extension).
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
ROLE_ORDER = {"first": 0, "last": 1, "reference": 2}
# A studio link to a stored frame stays valid this long: providers fetch frames when the
# task starts, which can be well after submission when their queue is long.
LINK_MAX_AGE_SECONDS = 24 * 3600
_SIGNER_SALT = "videos.frames.link"
_DATA_URI = re.compile(
    r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*),(?P<data>.*)$", re.S
)


@dataclass(frozen=True)
class ProviderImageRules:
    """What a provider documents about input images beyond the studio's own limits."""

    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP")
    min_short_side: int = 0
    # Width / height bounds, when the provider documents them.
    min_ratio: float = 0.0
    max_ratio: float = float("inf")


# Kling: image / image_tail are .jpg/.jpeg/.png, at most 10 MB, at least 300 px, aspect
# ratio between 1:2.5 and 2.5:1 (PROVIDERS.md §4). The others document no further limits.
RULES: dict[str, ProviderImageRules] = {
    "kling": ProviderImageRules(
        formats=("JPEG", "PNG"), min_short_side=300, min_ratio=1 / 2.5, max_ratio=2.5
    ),
}
DEFAULT_RULES = ProviderImageRules()

# Models that only animate an image, so a first frame is required. Kling's text2video
# enum lacks kling-v1-5; NewAPI's "-fl-" models read their first image as the first frame
# and refuse a request without one.
_NEEDS_FIRST_FRAME = {
    "kling": lambda model: model == "kling-v1-5",
    "newapi": lambda model: "-fl-" in model,
}


def rules_for(kind: str) -> ProviderImageRules:
    return RULES.get(kind, DEFAULT_RULES)


def first_frame_required(kind: str, model: str) -> bool:
    check = _NEEDS_FIRST_FRAME.get(kind)
    return bool(check and check(model))


def requirements_text(kind: str) -> str:
    """The image rules in a sentence, for the form's help text."""
    rules = rules_for(kind)
    names = " or ".join(", ".join(_format_name(f) for f in rules.formats).rsplit(", ", 1))
    text = f"{names}, up to 10 MB and 40 megapixels"
    if rules.min_short_side:
        text += f", at least {rules.min_short_side} px on the short side"
    return text + "."


def _format_name(name: str) -> str:
    return "WebP" if name == "WEBP" else name


class FrameError(Exception):
    """An image the studio will not send, with the reason in plain words."""


@dataclass(frozen=True)
class NewFrame:
    """A checked frame waiting to be stored with a new clip."""

    role: str
    position: int = 0
    content: bytes = field(default=b"", repr=False)
    content_type: str = ""
    width: int | None = None
    height: int | None = None
    source_url: str = ""
    # The storage key of an existing frame whose image is copied (templates, retries).
    copy_from: str = ""

    @property
    def needs_link(self) -> bool:
        """True when the studio stores this image and must hand providers a link to it."""
        return bool(self.content or self.copy_from)


# --- checking ------------------------------------------------------------------------------


def check_image(content: bytes, *, kind: str) -> tuple[str, int, int]:
    """The image's content type, width and height, or FrameError saying what is wrong."""
    if not content:
        raise FrameError("The file is empty.")
    if len(content) > MAX_BYTES:
        raise FrameError(
            f"The image is {len(content) / 1024 / 1024:.1f} MB; the limit is 10 MB. "
            "Export it smaller."
        )
    try:
        with Image.open(io.BytesIO(content)) as image:
            image_format, (width, height) = image.format, image.size
            # Checked from the header, before any pixel is decoded: a small file can
            # claim a huge canvas ("pixel flood") and exhaust memory when loaded.
            _check_pixels(width, height)
            image.verify()
        # verify() leaves the image unusable and skips the pixel data of some formats;
        # decoding it whole is what catches a truncated file.
        with Image.open(io.BytesIO(content)) as image:
            image.load()
    except Image.DecompressionBombError:
        raise FrameError(_too_many_pixels_message()) from None
    except UnidentifiedImageError:
        raise FrameError(
            "This file is not an image the studio can read. Use a JPEG, PNG or WebP."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise FrameError(
            "The image is damaged or incomplete (it may have been cut off while copying). "
            "Export it again."
        ) from None
    if image_format not in FORMATS:
        raise FrameError(
            f"{image_format or 'This'} images are not accepted. Use a JPEG, PNG or WebP."
        )
    _check_provider_rules(kind, image_format, width, height)
    return FORMATS[image_format][0], width, height


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise FrameError(_too_many_pixels_message(width, height))


def _too_many_pixels_message(width: int = 0, height: int = 0) -> str:
    size = f" ({width}×{height})" if width and height else ""
    return f"The image is too large{size}: at most 40 megapixels. Scale it down."


def _check_provider_rules(kind: str, image_format: str, width: int, height: int) -> None:
    rules = rules_for(kind)
    label = kind.capitalize()
    if image_format not in rules.formats:
        allowed = " or ".join(_format_name(f) for f in rules.formats)
        raise FrameError(f"{label} takes {allowed} images only. Convert it and try again.")
    if min(width, height) < rules.min_short_side:
        raise FrameError(
            f"{label} needs images at least {rules.min_short_side} px on the short side; "
            f"this one is {width}×{height}."
        )
    if not rules.min_ratio <= width / height <= rules.max_ratio:
        raise FrameError(
            f"{label} takes images between 1:2.5 and 2.5:1; this one is {width}×{height}. "
            "Crop it and try again."
        )


def check_link(url: str, *, allow_private: bool = False) -> None:
    """Refuse (FrameError) a link to a private or local address, before anyone is sent it.

    The provider fetches a pasted link, and the studio fetches it for previews: neither
    should be pointed at this studio's own network. Sandbox accounts may use loopback.
    """
    try:
        netguard.check_url(url, allow_private=allow_private)
    except netguard.UnknownHost:
        # The provider resolves the name from its own network, where it may well exist; the
        # studio's own fetches check the address again when they connect.
        return
    except netguard.BlockedURL as exc:
        raise FrameError(f"{exc.message} Paste a public link or upload the image.") from None


def check_stored(frame: Frame, *, kind: str, allow_private: bool = False) -> None:
    """Reusing a stored frame with another provider: its rules may be stricter."""
    if frame.source_url:
        # A link kept from a sandbox clip may point at loopback; a real account may not.
        check_link(frame.source_url, allow_private=allow_private)
        return
    if not frame.width or not frame.height:
        return
    image_format = next(
        (name for name, (ctype, _) in FORMATS.items() if ctype == frame.content_type), "JPEG"
    )
    _check_provider_rules(kind, image_format, frame.width, frame.height)


# --- reading what the creator gave ---------------------------------------------------------


def from_upload(upload: UploadedFile, *, kind: str, role: str, position: int = 0) -> NewFrame:
    if upload.size is not None and upload.size > MAX_BYTES:
        raise FrameError(
            f"The image is {upload.size / 1024 / 1024:.1f} MB; the limit is 10 MB. "
            "Export it smaller."
        )
    upload.seek(0)
    content = upload.read(MAX_BYTES + 1)
    return _checked(content, kind=kind, role=role, position=position)


def from_link(
    text: str, *, kind: str, role: str, position: int = 0, allow_private: bool = False
) -> NewFrame:
    """A pasted public image link, or a pasted data: URI decoded and checked like a file.

    ``allow_private``: the account is a sandbox one, whose twins run on this machine.
    """
    text = text.strip()
    if text[:5].lower() == "data:":
        return _checked(_decode_data_uri(text), kind=kind, role=role, position=position)
    if len(text) > MAX_LINK_LENGTH:
        raise FrameError("The link is longer than 2000 characters.")
    try:
        URLValidator(schemes=["http", "https"])(text)
    except ValidationError:
        raise FrameError(
            "Paste a public image link starting with https:// (or a data: URI)."
        ) from None
    check_link(text, allow_private=allow_private)
    # Not fetched here: the provider fetches it, and says so if it cannot.
    return NewFrame(role=role, position=position, source_url=text)


# A preview fetch holds a web worker: a few seconds, never the provider's long download.
PREVIEW_TIMEOUT = httpx.Timeout(8.0, connect=4.0)
PREVIEW_SECONDS = 12.0


def fetch_linked(url: str, *, allow_private: bool = False) -> tuple[bytes, str]:
    """A pasted link's image and content type, fetched through the fetch guard and checked
    like an upload (≤ 10 MB, an image by its bytes); FrameError says why it cannot be shown."""
    try:
        netguard.check_url(url, allow_private=allow_private)
        with (
            netguard.client(allow_private=allow_private, timeout=PREVIEW_TIMEOUT) as http,
            http.stream("GET", url, headers={"Accept": "image/*"}) as response,
        ):
            if response.status_code != 200:
                raise FrameError(f"The link answered HTTP {response.status_code}.")
            content = netguard.read_limited(response, MAX_BYTES, max_seconds=PREVIEW_SECONDS)
    except netguard.BlockedURL as exc:
        raise FrameError(exc.message) from None
    except netguard.TooLarge:
        raise FrameError("The linked image is larger than 10 MB.") from None
    except httpx.HTTPError:
        raise FrameError("The studio could not fetch the image from this link.") from None
    content_type, _, _ = check_image(content, kind="")
    return content, content_type


def placeholder_svg(reason: str) -> bytes:
    """A grey 16:9 card saying why a linked image is not shown, in place of the image."""
    lines = "".join(
        f'<tspan x="160" dy="14">{escape(line)}</tspan>' for line in textwrap.wrap(reason, 52)[:3]
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="180" viewBox="0 0 320 180">'
        '<rect width="320" height="180" fill="#e5e7eb"/>'
        '<text x="160" y="72" text-anchor="middle" font-family="sans-serif" font-size="14" '
        'fill="#374151">Linked image not shown</text>'
        '<text x="160" y="84" text-anchor="middle" font-family="sans-serif" font-size="10" '
        f'fill="#6b7280">{lines}</text></svg>'
    ).encode()


def _decode_data_uri(text: str) -> bytes:
    match = _DATA_URI.match(text)
    if not match or ";base64" not in match["params"].lower():
        raise FrameError("A data: URI must look like data:image/png;base64,… .")
    encoded = "".join(match["data"].split())
    if len(encoded) * 3 // 4 > MAX_BYTES + 3:
        raise FrameError("The image in the data: URI is larger than 10 MB. Export it smaller.")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise FrameError("The data: URI is not valid Base64. Copy it again.") from None


def _checked(content: bytes, *, kind: str, role: str, position: int) -> NewFrame:
    content_type, width, height = check_image(content, kind=kind)
    return NewFrame(
        role=role,
        position=position,
        content=content,
        content_type=content_type,
        width=width,
        height=height,
    )


def copy_of(frame: Frame, *, position: int | None = None) -> NewFrame:
    """A stored frame, to be stored again with another clip (its own copy of the file)."""
    return NewFrame(
        role=frame.role,
        position=frame.position if position is None else position,
        content_type=frame.content_type,
        width=frame.width,
        height=frame.height,
        source_url=frame.source_url,
        copy_from=frame.image.name if frame.image else "",
    )


# --- storing -------------------------------------------------------------------------------


def store(clip: Clip, frames: Iterable[NewFrame]) -> list[Frame]:
    stored = []
    for new in frames:
        frame = Frame(
            clip=clip,
            role=new.role,
            position=new.position,
            source_url=new.source_url,
            content_type=new.content_type,
            width=new.width,
            height=new.height,
        )
        content = new.content
        if new.copy_from:
            with default_storage.open(new.copy_from, "rb") as handle:
                content = handle.read()
        if content:
            extension = next(
                (ext for ctype, ext in FORMATS.values() if ctype == new.content_type), "img"
            )
            frame.image.save(f"{new.position}.{extension}", ContentFile(content), save=False)
        frame.save()
        stored.append(frame)
    return stored


# --- handing frames to providers -----------------------------------------------------------


def storage_is_local() -> bool:
    try:
        default_storage.path("x")
    except NotImplementedError:
        return False
    return True


def can_link_stored_images() -> bool:
    """Whether a provider can fetch a stored image: S3 presigns; local disk needs PUBLIC_URL."""
    return bool(settings.PUBLIC_URL) or not storage_is_local()


def usable_transports(transports: Iterable[str]) -> tuple[str, ...]:
    return tuple(t for t in transports if t != "url" or can_link_stored_images())


# The best way first: a file part or inline bytes travel with the request, so nothing
# depends on the provider reaching the studio; a link is the fallback.
TRANSPORT_PREFERENCE = ("file", "base64", "data_uri", "url")


def default_transport(transports: Iterable[str]) -> str | None:
    offered = set(transports)
    return next((t for t in TRANSPORT_PREFERENCE if t in offered), None)


def signed_token(frame: Frame) -> str:
    return signing.TimestampSigner(salt=_SIGNER_SALT).sign(str(frame.pk))


def frame_for_token(token: str) -> int:
    """The frame id a link names; signing.SignatureExpired or BadSignature otherwise."""
    value = signing.TimestampSigner(salt=_SIGNER_SALT).unsign(token, max_age=LINK_MAX_AGE_SECONDS)
    return int(value)


def link_to(frame: Frame) -> str:
    """An absolute, expiring link a provider can fetch the stored image from."""
    if not storage_is_local():
        # S3: a presigned URL, which expires by itself (S3_URL_EXPIRE_SECONDS).
        return default_storage.url(frame.image.name)
    extension = frame.image.name.rsplit(".", 1)[-1]
    path = reverse("frame-link", args=[signed_token(frame), f"{frame.role}.{extension}"])
    return settings.PUBLIC_URL + path


def provider_input(frame: Frame, *, transport: str) -> FrameInput:
    """One stored frame as the provider client takes it, by the chosen transport."""
    if frame.source_url:
        return FrameInput(role=frame.role, url=frame.source_url)
    if transport == "url":
        return FrameInput(role=frame.role, url=link_to(frame), content_type=frame.content_type)
    with default_storage.open(frame.image.name, "rb") as handle:
        content = handle.read()
    return FrameInput(
        role=frame.role,
        content=content,
        content_type=frame.content_type or "image/png",
        filename=frame.image.name.rsplit("/", 1)[-1],
    )


def ordered(frames: Iterable[Frame]) -> list[Frame]:
    return sorted(frames, key=lambda f: (ROLE_ORDER.get(f.role, 9), f.position, f.pk))
