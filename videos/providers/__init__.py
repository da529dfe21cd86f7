"""Provider registry: which client speaks for which provider kind, and what each model accepts.

The capabilities below are data the forms read, so nothing a model cannot do is offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from videos.providers import apimart
from videos.providers.base import (
    Credentials,
    GenerationRequest,
    ProviderError,
    State,
    TaskState,
)

__all__ = [
    "Credentials",
    "GenerationRequest",
    "ModelSpec",
    "ProviderClient",
    "ProviderError",
    "State",
    "TaskState",
    "client_for",
    "models_for",
]


class ProviderClient(Protocol):
    def submit(self, request: GenerationRequest) -> str: ...

    def status(self, task_id: str) -> TaskState: ...


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    durations: tuple[int, ...]
    default_duration: int
    aspect_ratios: tuple[str, ...]
    resolutions: tuple[str, ...]
    default_resolution: str


APIMART_MODELS = (
    ModelSpec(
        name="veo3.1-fast-official",
        label="Veo 3.1 Fast",
        durations=(4, 6, 8),
        default_duration=8,
        aspect_ratios=("16:9", "9:16"),
        resolutions=("720p", "1080p", "4K"),
        default_resolution="720p",
    ),
    ModelSpec(
        name="veo3.1-quality-official",
        label="Veo 3.1 Quality",
        durations=(4, 6, 8),
        default_duration=8,
        aspect_ratios=("16:9", "9:16"),
        resolutions=("720p", "1080p", "4K"),
        default_resolution="720p",
    ),
)

MODELS: dict[str, tuple[ModelSpec, ...]] = {
    "apimart": APIMART_MODELS,
}

CLIENTS = {
    "apimart": apimart.Client,
}


def models_for(kind: str) -> tuple[ModelSpec, ...]:
    return MODELS.get(kind, ())


def model_spec(kind: str, name: str) -> ModelSpec | None:
    return next((spec for spec in models_for(kind) if spec.name == name), None)


def client_for(kind: str, *, base_url: str, credentials: Credentials) -> ProviderClient:
    try:
        client_class = CLIENTS[kind]
    except KeyError:
        raise ProviderError(
            f"The studio cannot talk to {kind!r} accounts yet.", code="unsupported", permanent=True
        ) from None
    return client_class(base_url, credentials)
