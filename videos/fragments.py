"""Keys for rendered page parts kept in the ``template_fragments`` cache.

Pages cache their costly parts with Django's ``{% cache %}`` tag, varied on a *version*: a
small value the view reads cheaply (a few columns of the rows the part draws, the viewer's
role and rights, the query string). Equal versions draw equal HTML, so an entry is never
stale while its version is current; a change writes under a new key and the old one ages
out. The key also carries a fingerprint of the templates, so a deploy that changes how a
part is drawn never serves HTML rendered by the previous code (Redis outlives deploys).

A cached part must not hold anything personal to one request beyond its version: no CSRF
token (no POST forms inside), no messages.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from django.conf import settings


@cache
def templates_fingerprint() -> str:
    digest = hashlib.blake2b(digest_size=8)
    for folder in (Path(settings.BASE_DIR) / "templates",):
        for path in sorted(folder.rglob("*.html")):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def fragment_key(key: str, key_prefix: str, version: int | None) -> str:
    return f"{key_prefix}:{version}:{templates_fingerprint()}:{key}"


def version_text(*parts: object) -> str:
    """A version as one short string for ``{% cache %}``'s vary-on arguments."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()
