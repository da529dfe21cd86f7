"""Faults a caller can ask the sandbox for, per request, to see every documented error.

Ask with a header ``X-Sandbox-Fault: NAME`` or by writing ``[sandbox:NAME]`` anywhere in the
prompt (so demos can trigger them from the studio's own form). Names:

- an HTTP or body status code the provider documents (``400``, ``401``, ``402``, ``403``,
  ``404``, ``422``, ``429``, ``455``, ``500``, ``501``, ``502``, ``505``): the submission is
  answered with that provider's documented error body; ``429`` carries ``Retry-After: 2``;
- ``policy``: a content-policy refusal, in the provider's own words;
- ``timeout``: the submission answers only after SANDBOX_TIMEOUT_SECONDS (longer than the
  client waits);
- ``malformed``: the submission answers 200 with a body that is not JSON;
- ``never``: the task is accepted but never finishes;
- ``fail``: the task runs, then fails;
- ``extend_failed``: (NewAPI) the first 8 s succeed, the extension fails;
- ``expired``: the task succeeds but its result link answers 404 (already expired).

Two more change the picture rather than the answer, and combine with any of the above
(several may be named: ``[sandbox:drift] [sandbox:blur_end]``, or a comma-separated header):

- ``drift``: a warm colour cast. A video made from a first frame is that image with one
  more step of cast, so a chain of continuations drifts further at every hop; a video made
  from a prompt alone (or an extension) warms steadily with its timecode;
- ``blur_end``: the last quarter second goes out of focus, as a provider's final frames
  sometimes do.
"""

from __future__ import annotations

import re

from django.http import HttpRequest

FAULT_RE = re.compile(r"\[sandbox:([a-z0-9_]+)\]", re.IGNORECASE)
TASK_FAULTS = {"never", "fail", "extend_failed", "expired"}
RENDER_EFFECTS = frozenset({"drift", "blur_end"})


def _header_names(request: HttpRequest) -> list[str]:
    header = request.headers.get("X-Sandbox-Fault", "")
    return [name.strip().lower() for name in header.split(",") if name.strip()]


def requested(request: HttpRequest, *texts: object) -> str:
    """The one fault that changes how the twin answers (render effects are left out)."""
    for name in _header_names(request):
        if name not in RENDER_EFFECTS:
            return name
    for text in texts:
        if isinstance(text, str):
            for match in FAULT_RE.finditer(text):
                if match[1].lower() not in RENDER_EFFECTS:
                    return match[1].lower()
    return ""


def render_effects(request: HttpRequest, *texts: object) -> frozenset[str]:
    """Every render effect asked for, by header or in any of the prompts."""
    names = set(_header_names(request))
    for text in texts:
        if isinstance(text, str):
            names.update(match[1].lower() for match in FAULT_RE.finditer(text))
    return RENDER_EFFECTS & names


def status_code(fault: str) -> int | None:
    return int(fault) if fault.isdigit() and 400 <= int(fault) <= 599 else None
