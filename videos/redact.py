"""One redaction helper for everything a provider says back: keys never reach a page or a log.

Some providers echo the request's key in an error message ("invalid key sk-…"). Whatever the
studio saves, shows or logs of a provider's words goes through ``redact`` first.
"""

from __future__ import annotations

import re

# A bearer token or a JWT, whoever's: the studio never needs to show one.
TOKEN_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
)
# Shorter stored values would match ordinary words.
MIN_SECRET_LENGTH = 6


def redact(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` with every stored secret and anything shaped like a token replaced."""
    if not text:
        return text
    for secret in sorted((s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH), key=len)[::-1]:
        text = text.replace(secret, f"[key …{secret[-4:]}]" if len(secret) > 12 else "[key]")
    for pattern in TOKEN_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[token]", text)
    return text
