"""Request reading the twins share (Kling checks its own JWTs, so it only reads bodies here).

Only the reading is shared: each twin answers in its own provider's error shape.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest

# Sandbox rule for trying "Test connection" (README, "The provider sandbox"): any key works,
# except that keys starting with BAD_KEY_PREFIX are refused as invalid.
BAD_KEY_PREFIX = "sk-bad"


def bearer_key(request: HttpRequest) -> str | None:
    """The key from ``Authorization: Bearer <key>``, or None when the twin must answer 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    if token.strip().startswith(BAD_KEY_PREFIX):
        return None
    return token.strip()


def json_object(request: HttpRequest) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one (the twin answers 400 or 422)."""
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None
