"""What every provider client speaks to the studio: one request shape in, one task state out.

Each provider module turns these into its own wire format. Nothing here knows about
Django models: a client gets a base URL and a credential, nothing more.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import httpx
from django.conf import settings


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class TaskState:
    """A provider task's state, normalised."""

    state: State
    progress: int = 0
    phase: str = ""
    video_url: str = ""
    # Further videos of the same task, when one request asked for several (apimart's
    # sample_count): each becomes a take of its own beside the first.
    more_video_urls: tuple[str, ...] = ()
    expires_at: datetime | None = None
    cost: Decimal | None = None
    estimate_seconds: int | None = None
    error_code: str = ""
    error_message: str = ""
    provider_message: str = ""
    # Ids a later call needs, kept in the clip's params (NewAPI's remix_id for a retried
    # extension).
    facts: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_final(self) -> bool:
        return self.state not in {State.QUEUED, State.RUNNING}


@dataclass(frozen=True)
class ExtendSpec:
    """How a finished clip of this model can be extended at the same provider."""

    adds_seconds: float
    max_total_seconds: float
    # "whole": the provider returns source + new part; "new_part": only the new footage.
    returns: str = "whole"
    note: str = ""


@dataclass(frozen=True)
class OptionSpec:
    """One documented request field a model takes besides prompt, size and frames.

    ``kind``: "int" and "float" (within ``minimum``..``maximum``), "bool" (a tick box; unticked
    sends ``false`` unless ``only_true``, then nothing), "choice" (``choices``: (value, label)),
    "text". ``needs_frame``: the provider reads it only with an image (apimart's
    resize_mode). ``on_extend``: the provider's extension endpoint takes it too.
    """

    name: str
    label: str
    kind: str
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[tuple[str, str], ...] = ()
    only_true: bool = False
    needs_frame: bool = False
    on_extend: bool = False
    max_length: int = 0
    # What the form starts with; None leaves the field empty (nothing sent).
    default: Any = None
    step: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """What one model accepts. Forms and the extend action read these; nothing else is offered."""

    name: str
    label: str
    durations: tuple[int, ...]
    default_duration: int
    aspect_ratios: tuple[str, ...]
    resolutions: tuple[str, ...]
    default_resolution: str
    # Kling has modes (std/pro) where the others have resolutions: the form's label follows.
    resolution_label: str = "Resolution"
    # Which frame slots the model takes ("first", "last", "reference") and how many references.
    frame_roles: tuple[str, ...] = ()
    max_references: int = 0
    # How images reach the provider: "url", "file" (multipart part), "data_uri", "base64".
    frame_transports: tuple[str, ...] = ("url",)
    # Prompts the model takes: NewAPI's 15 s models add "prompt_extend"; "negative_prompt"
    # only where the provider documents it (shown as "Avoid").
    prompts: tuple[str, ...] = ("prompt",)
    extend: ExtendSpec | None = None
    options: tuple[OptionSpec, ...] = ()
    # Sound: "always" (the provider adds it), "option" (a generate_audio option), "never",
    # or "" where the provider does not say.
    audio: str = ""

    def option(self, name: str) -> OptionSpec | None:
        return next((option for option in self.options if option.name == name), None)

    @property
    def extend_options(self) -> tuple[OptionSpec, ...]:
        return tuple(option for option in self.options if option.on_extend)


@dataclass(frozen=True)
class FrameInput:
    """An image handed to a provider; which of the forms is used is the client's business."""

    role: str  # "first" | "last" | "reference"
    url: str = ""
    content: bytes = b""
    content_type: str = "image/png"
    filename: str = "frame.png"


@dataclass(frozen=True)
class GenerationRequest:
    model: str
    prompt: str
    params: dict[str, Any] = field(default_factory=dict)
    frames: tuple[FrameInput, ...] = ()
    # Where the provider should POST status changes (kie, Kling); empty means poll only.
    callback_url: str = ""


@dataclass(frozen=True)
class Credentials:
    key: str
    secret: str = ""


class ProviderError(Exception):
    """A provider refused or failed a call.

    ``message`` is for the creator (plain words and what to do next); ``provider_message``
    is what the provider said. ``permanent`` errors are never retried; ``retry_after`` is
    the wait, in seconds, the provider asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        permanent: bool = False,
        retry_after: float | None = None,
        http_status: int | None = None,
        provider_message: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.permanent = permanent
        self.retry_after = retry_after
        self.http_status = http_status
        self.provider_message = provider_message

    @property
    def safe_to_resend(self) -> bool:
        """True when the provider certainly did not accept the request (so no charge)."""
        if self.permanent or self.code == "no_answer":
            return False
        return self.code == "unreachable" or (self.http_status or 0) in {429} | set(range(500, 600))

    def __str__(self) -> str:
        extra = f" (provider said: {self.provider_message})" if self.provider_message else ""
        return f"{self.message}{extra}"


# Plain words for the creator, by HTTP status or body code, with the next step to take.
# (The wording for provider-specific codes lives in each provider module.)
PLAIN_MESSAGES: dict[int, tuple[str, bool]] = {
    400: ("The provider refused the request as invalid. Check the prompt and settings.", True),
    401: ("The provider did not accept the API key. An admin should check the key.", True),
    402: ("The provider account has run out of balance. An admin should top it up.", True),
    403: ("The provider refused access for this key. An admin should check its permissions.", True),
    404: ("The provider does not know this task or video.", True),
    422: ("The provider rejected a parameter. Check the settings and try again.", True),
    429: ("The provider is rate-limiting requests. It will be tried again shortly.", False),
    500: ("The provider had an internal error. Try again in a few minutes.", False),
    502: ("The provider's gateway is temporarily unavailable. Try again in a few minutes.", False),
    503: ("The provider is temporarily unavailable. Try again in a few minutes.", False),
    504: ("The provider timed out. Try again in a few minutes.", False),
}


def error_for_status(
    status: int, *, provider_message: str = "", retry_after: float | None = None, code: str = ""
) -> ProviderError:
    message, permanent = PLAIN_MESSAGES.get(
        status,
        (
            ("The provider failed. Try again in a few minutes.", False)
            if status >= 500
            else ("The provider refused the request.", True)
        ),
    )
    return ProviderError(
        message,
        code=code or str(status),
        permanent=permanent,
        retry_after=retry_after,
        http_status=status,
        provider_message=provider_message,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def from_timestamp(value: Any, *, milliseconds: bool = False) -> datetime | None:
    if value in (None, "", 0):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if milliseconds:
        number /= 1000
    return datetime.fromtimestamp(number, tz=UTC)


def http_client(
    base_url: str, headers: dict[str, str], *, max_connections: int = 10
) -> httpx.Client:
    """An httpx client with the studio's timeouts; transport retries cover connect errors only."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        headers={"User-Agent": "Clipchain/1.0", **headers},
        timeout=httpx.Timeout(settings.PROVIDER_TIMEOUT_SECONDS, connect=10.0),
        transport=httpx.HTTPTransport(retries=2, limits=limits),
        follow_redirects=True,
    )


def unreachable(exc: httpx.HTTPError) -> ProviderError:
    # A connection that never opened carried no request: sending again is safe. Anything
    # later (a read timeout, a dropped connection) may have reached the provider, so the
    # outcome is unknown and a paid submission must not be sent again.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ProviderError(
            "The provider could not be reached. It will be tried again.",
            code="unreachable",
            provider_message=str(exc) or type(exc).__name__,
        )
    return ProviderError(
        "The provider did not answer in time.",
        code="no_answer",
        provider_message=str(exc) or type(exc).__name__,
    )


class BearerClient:
    """The HTTP side of a client that sends its key as ``Authorization: Bearer``.

    Subclasses parse the answers, each in its provider's own shape.
    """

    # What to tell the creator when the account has no key; None sends the request anyway.
    no_key_message: str | None = None

    def __init__(
        self, base_url: str, credentials: Credentials, *, http: httpx.Client | None = None
    ) -> None:
        self.base_url = base_url
        self.credentials = credentials
        # The tracker shares one pooled client per account across its threads (httpx
        # clients are thread-safe), so a thousand polls reuse a handful of connections.
        self.http = http

    def authorization(self) -> str:
        return f"Bearer {self.credentials.key}"

    def _check_key(self) -> None:
        if self.no_key_message is not None and not self.credentials.key.strip():
            # httpx refuses a bare "Bearer " header before anything is sent, which would
            # otherwise read as a network failure.
            raise ProviderError(self.no_key_message, code="no_key", permanent=True)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self._check_key()
        # Per request, not per client: Kling's JWT expires and is signed afresh each time.
        headers = {"Authorization": self.authorization()}
        try:
            if self.http is not None:
                try:
                    return self.http.request(method, path, headers=headers, **kwargs)
                except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                    if method != "GET":
                        raise
                    # A pooled connection the server had already closed: a status check
                    # is free and idempotent, so it is asked once more on a fresh one.
                    return self.http.request(method, path, headers=headers, **kwargs)
            with http_client(self.base_url, {}) as http:
                return http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(exc) from exc
