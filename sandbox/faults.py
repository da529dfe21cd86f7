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
"""

from __future__ import annotations

import re

from django.http import HttpRequest

FAULT_RE = re.compile(r"\[sandbox:([a-z0-9_]+)\]", re.IGNORECASE)
TASK_FAULTS = {"never", "fail", "extend_failed", "expired"}


def requested(request: HttpRequest, *texts: object) -> str:
    header = request.headers.get("X-Sandbox-Fault", "").strip().lower()
    if header:
        return header
    for text in texts:
        if isinstance(text, str):
            match = FAULT_RE.search(text)
            if match:
                return match[1].lower()
    return ""


def status_code(fault: str) -> int | None:
    return int(fault) if fault.isdigit() and 400 <= int(fault) <= 599 else None
