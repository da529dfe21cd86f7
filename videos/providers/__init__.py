"""Provider registry: which client speaks for which provider kind, and what each model accepts.

Each provider module (one per wire format) exports ``Client`` and ``MODELS``. The
capabilities are data the forms read, so nothing a model cannot do is offered.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Protocol

import httpx

from videos.providers import apimart, kie, kling, newapi
from videos.providers.base import (
    Credentials,
    ExtendSpec,
    GenerationRequest,
    ModelSpec,
    ProviderError,
    State,
    TaskState,
)

__all__ = [
    "Credentials",
    "ExtendSpec",
    "GenerationRequest",
    "ModelSpec",
    "ProviderClient",
    "ProviderError",
    "State",
    "TaskState",
    "client_for",
    "model_spec",
    "models_for",
]

MODULES: dict[str, ModuleType] = {
    "apimart": apimart,
    "kie": kie,
    "kling": kling,
    "newapi": newapi,
}


class ProviderClient(Protocol):
    def submit(self, request: GenerationRequest) -> str: ...

    def status(self, task_id: str) -> TaskState: ...


def models_for(kind: str) -> tuple[ModelSpec, ...]:
    module = MODULES.get(kind)
    return module.MODELS if module else ()


def model_spec(kind: str, name: str) -> ModelSpec | None:
    return next((spec for spec in models_for(kind) if spec.name == name), None)


def accepts_callbacks(kind: str) -> bool:
    return kind in {"kie", "kling"}


def callback_task_ids(
    kind: str, *, headers: Mapping[str, str], body: bytes, secret: str
) -> tuple[str, ...]:
    """The task ids a provider callback is about; ValueError when it cannot be trusted.

    The studio treats a callback as a nudge to poll at once: the status endpoint stays the
    authority (kie says so outright), so a forged or replayed callback can change nothing.
    """
    if kind == "kie":
        task_id, _ = kie.verify_callback(headers, body, secret)
        return (task_id,)
    if kind == "kling":
        task_id, _ = kling.parse_callback(body)
        return kling.task_ids_for(task_id)
    raise ValueError(f"{kind} sends no callbacks.")


def client_for(
    kind: str, *, base_url: str, credentials: Credentials, http: httpx.Client | None = None
) -> ProviderClient:
    module = MODULES.get(kind)
    if module is None:
        raise ProviderError(
            f"The studio cannot talk to {kind!r} accounts yet.", code="unsupported", permanent=True
        )
    return module.Client(base_url, credentials, http=http)
