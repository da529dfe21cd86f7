"""Where the twins may deliver callbacks: this studio's own addresses, nothing else.

A real provider posts to whatever URL it is handed, from its own network. The twins run
inside the studio, so an unchecked callback URL would let anyone holding a sandbox key make
the studio's server POST into its own network. Callbacks exist so that the studio hears
back, so the studio's own addresses are all a twin needs: loopback, the hosts in
ALLOWED_HOSTS (a bare "*" is not taken as "anywhere") and the host of PUBLIC_URL.

This check lives here, not in videos/, because the sandbox never imports the studio: it is a
stand-in for someone else's server.
"""

from __future__ import annotations

import ipaddress

import httpx
from django.conf import settings
from django.http.request import validate_host


def _host_of(url: str) -> str | None:
    # httpx's parser, the one the twins post with: both must agree on the host.
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return None
    return parsed.raw_host.decode("ascii").lower().rstrip(".")


def is_studio_address(url: str) -> bool:
    """True when ``url`` is an http(s) link to this studio itself."""
    host = _host_of(url)
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    public_host = _host_of(settings.PUBLIC_URL) if settings.PUBLIC_URL else None
    if host == public_host:
        return True
    patterns = [pattern for pattern in settings.ALLOWED_HOSTS if pattern != "*"]
    return validate_host(f"[{host}]" if ":" in host else host, patterns)
